#!/bin/sh
# Exported-symbol check for libbitnet.so:
#  1. every defined dynamic symbol is named bitnet_* (nothing internal leaks);
#  2. every function the public header declares is exported (no declared-but-missing API);
#  3. the soname is libbitnet.so.<major>.
# usage: check_exports.sh LIBBITNET_SO HEADER SOVERSION
set -eu
lib=$1 header=$2 major=$3
fail=0
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtDdBbRrVvWw]$/ {print $3}' | sed 's/@.*//' | sort -u)
leaks=$(printf '%s\n' "$exported" | grep -v '^bitnet_' | grep -v '^$' || true)
if [ -n "$leaks" ]; then
    echo "FAIL: symbols exported that are not bitnet_*:"; printf '  %s\n' $leaks; fail=1
fi
declared=$(grep '^BITNET_API' "$header" | grep -o 'BITNET_API[^;(]*(' | sed 's/.*[^a-z0-9_]\(bitnet_[a-z0-9_]*\)($/\1/' | sort -u)
for f in $declared; do
    printf '%s\n' "$exported" | grep -qx "$f" || { echo "FAIL: declared in bitnet.h but not exported: $f"; fail=1; }
done
for f in $exported; do
    printf '%s\n' "$declared" | grep -qx "$f" || { echo "FAIL: exported but not declared in bitnet.h: $f"; fail=1; }
done
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libbitnet.so.$major" ] || { echo "FAIL: soname is '$soname', want libbitnet.so.$major"; fail=1; }
n=$(printf '%s\n' "$declared" | wc -l)
[ $fail -eq 0 ] && echo "ok: $n public functions exported, nothing else; soname $soname"
exit $fail
