# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets (tests/fuzz, -DCTFS_BUILD_FUZZERS=ON). They need clang: libFuzzer ships
# with it (Debian 12: clang-14 + libclang-rt-14-dev, scripts/install-deps.sh). Configure with
#   cmake -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCTFS_BUILD_FUZZERS=ON
# or just run scripts/fuzz.sh. The libraries are then built with
# -fsanitize=fuzzer-no-link,address,undefined (cmake/CtfsTargets.cmake), the fuzzers with
# -fsanitize=fuzzer,address,undefined.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR
          "CTFS_BUILD_FUZZERS=ON needs clang (libFuzzer), but the C++ compiler is "
          "${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER}). Configure a fresh build directory "
          "with -DCMAKE_CXX_COMPILER=clang++-14 (apt-get install clang-14 libclang-rt-14-dev), "
          "or run scripts/fuzz.sh.")
endif()

set(CTFS_FUZZER_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)

include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=fuzzer,address,undefined")
check_cxx_source_compiles(
  "#include <cstddef>
   #include <cstdint>
   extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }"
  CTFS_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(NOT CTFS_HAVE_LIBFUZZER)
  message(FATAL_ERROR
          "CTFS_BUILD_FUZZERS=ON: ${CMAKE_CXX_COMPILER} cannot link -fsanitize=fuzzer "
          "(Debian 12: apt-get install libclang-rt-14-dev, see scripts/install-deps.sh)")
endif()

# All fuzzers: `cmake --build DIR --target ctfs_fuzzers`.
add_custom_target(ctfs_fuzzers)

# ctfs_fuzzer(name DEPS ...): tests/fuzz/<name>_fuzzer.cc -> executable <name>_fuzzer, with our
# warnings, the fuzzer sanitizers and CTFS_TESTDATA_DIR (the frozen fixtures and their keys).
function(ctfs_fuzzer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(target ${name}_fuzzer)
  add_executable(${target} ${CMAKE_CURRENT_SOURCE_DIR}/${target}.cc)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE ${ARG_DEPS})
  target_compile_definitions(${target}
                             PRIVATE CTFS_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/tests/testdata")
  target_compile_options(${target} PRIVATE ${CTFS_WARNINGS} ${CTFS_FUZZER_FLAGS})
  target_link_options(${target} PRIVATE ${CTFS_FUZZER_FLAGS})
  add_dependencies(ctfs_fuzzers ${target})
endfunction()
