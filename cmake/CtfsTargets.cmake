# SPDX-License-Identifier: Apache-2.0
# Helpers that give every ctfs target the same warnings and sanitizer flags.
# Warnings (BoringSSL's set) apply to our targets only, never to third-party code.
set(CTFS_WARNINGS
    -Wall -Wextra -Werror -Wformat=2 -Wmissing-field-initializers -Wshadow
    -Wsign-compare -Wtype-limits -Wvla -Wwrite-strings -Wimplicit-fallthrough
    -Wnon-virtual-dtor)

set(CTFS_SANITIZER_FLAGS "")
if(CTFS_BUILD_FUZZERS)
  # Fuzzer builds (cmake/CtfsFuzz.cmake): every library gets libFuzzer's coverage
  # instrumentation without its main(), so the fuzzers' coverage reaches our code.
  set(CTFS_SANITIZER_FLAGS -fsanitize=fuzzer-no-link,address,undefined
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(CTFS_SANITIZE)
  set(CTFS_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
                           -fno-omit-frame-pointer)
endif()

# ctfs_flags(target): warnings + sanitizers for one of our targets.
function(ctfs_flags target)
  target_compile_options(${target} PRIVATE ${CTFS_WARNINGS} ${CTFS_SANITIZER_FLAGS})
  target_link_options(${target} PRIVATE ${CTFS_SANITIZER_FLAGS})
endfunction()

# ctfs_library(name SOURCES ... DEPS ...): one layer as a static library.
function(ctfs_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_SOURCES)
    # A layer with no sources yet (headers only) still configures.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  ctfs_flags(${name})
endfunction()
