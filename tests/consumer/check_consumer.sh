#!/bin/sh
# Install the build tree into a temporary prefix, then build and run consumers of the
# installed library: through pkg-config (C, shared and static) and through
# find_package(bitnet) (C and C++).
# usage: check_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in include/bitnet.h lib/pkgconfig/bitnet.pc lib/cmake/bitnet/bitnetConfig.cmake; do
    [ -e "$prefix/$f" ] || [ -e "$(echo "$prefix/$f" | sed 's#/lib/#/lib/x86_64-linux-gnu/#')" ] || { echo "missing $f"; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name 'libbitnet.so.0' | head -n1)")
[ -n "$libdir" ] && [ -e "$libdir/libbitnet.a" ] || { echo "installed libraries missing"; exit 1; }
[ -x "$prefix/bin/bitnet-inspect" ] || { echo "examples not installed in $prefix/bin"; exit 1; }
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc=${CC:-cc}
# pkg-config, shared
$cc -std=c11 -Wall -Wextra -Werror -o "$work/pc_shared" "$src/tests/consumer/main.c" $(pkg-config --cflags --libs bitnet)
LD_LIBRARY_PATH="$libdir" "$work/pc_shared" "$work/pc_shared.gguf"
# pkg-config, static
# (-Bstatic makes the linker take libbitnet.a; Libs.private supplies -lm -pthread)
$cc -std=c11 -Wall -Wextra -Werror -o "$work/pc_static" "$src/tests/consumer/main.c" $(pkg-config --cflags bitnet) \
    $(pkg-config --libs-only-L bitnet) -Wl,-Bstatic -lbitnet -Wl,-Bdynamic \
    $(pkg-config --static --libs bitnet | sed 's/-lbitnet//; s/-L[^ ]*//g')
"$work/pc_static" "$work/pc_static.gguf"
# find_package
cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log"
cmake --build "$work/cm" > "$work/build.log"
LD_LIBRARY_PATH="$libdir" "$work/cm/consumer_c" "$work/cm_c.gguf"
LD_LIBRARY_PATH="$libdir" "$work/cm/consumer_cxx"
[ ! -x "$work/cm/consumer_static" ] || "$work/cm/consumer_static" "$work/cm_static.gguf"
# installed programs find the installed library through their relative RPATH, with no
# LD_LIBRARY_PATH and no ldconfig (the build tree's copy must not be what they load)
readelf -d "$prefix/bin/bitnet-inspect" | grep -q 'R.*PATH.*\$ORIGIN/\.\./lib' ||
    { echo "bitnet-inspect has no \$ORIGIN-relative RPATH:"; readelf -d "$prefix/bin/bitnet-inspect" | grep PATH; exit 1; }
loaded=$(env -u LD_LIBRARY_PATH ldd "$prefix/bin/bitnet-inspect" | awk '$1 == "libbitnet.so.0" { print $3 }')
[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$libdir/libbitnet.so.0")" ] ||
    { echo "installed bitnet-inspect loads '$loaded', not $libdir/libbitnet.so.0"; exit 1; }
env -u LD_LIBRARY_PATH "$prefix/bin/bitnet-inspect" "$work/pc_static.gguf" > "$work/inspect.out"
echo "ok: consumers built via pkg-config (shared, static) and find_package (C, C++, static); installed programs run without LD_LIBRARY_PATH"
