# kernels.cmake -- per-ISA compile flags for the kernel variants (included by the top
# CMakeLists.txt after it globs kernels/*.c into BN_KERNEL_SOURCES).
#
# Each variant file is compiled with exactly the instructions it may use; the rest of
# the library stays baseline, and kernels/dispatch.c picks a variant at run time from
# CPUID/XGETBV (getauxval on AArch64).  Variant files for another architecture are
# dropped from the build, so an aarch64 build compiles arm_neon.c only and an x86-64
# build the x86 files only.
set(_bn_kd ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _bn_cpu)

if(_bn_cpu MATCHES "^(x86_64|amd64|x64)$")
  set(BN_KERNEL_ARCH x86_64)
elseif(_bn_cpu MATCHES "^(aarch64|arm64)$")
  set(BN_KERNEL_ARCH aarch64)
else()
  set(BN_KERNEL_ARCH other)
endif()

if(NOT BN_KERNEL_ARCH STREQUAL "x86_64")
  list(FILTER BN_KERNEL_SOURCES EXCLUDE REGEX "/x86_[^/]*\\.c$")
endif()
if(NOT BN_KERNEL_ARCH STREQUAL "aarch64")
  list(FILTER BN_KERNEL_SOURCES EXCLUDE REGEX "/arm_[^/]*\\.c$")
endif()

if(BN_KERNEL_ARCH STREQUAL "x86_64")
  set_source_files_properties(${_bn_kd}/x86_avx2.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${_bn_kd}/x86_avxvnni.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavxvnni")
  set_source_files_properties(${_bn_kd}/x86_avx2_screen.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${_bn_kd}/x86_avx512.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni")
  set_source_files_properties(${_bn_kd}/x86_amx.c PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mamx-tile;-mamx-int8")
elseif(BN_KERNEL_ARCH STREQUAL "aarch64")
  # Baseline ASIMD is part of armv8-a; nothing extra needed.
endif()
message(STATUS "libbitnet kernels for ${BN_KERNEL_ARCH}")
