# SPDX-License-Identifier: Apache-2.0
# Helpers that give every ctfs target the same warnings and sanitizer flags.
# Warnings (BoringSSL's set) apply to our targets only, never to third-party code.
set(CTFS_WARNINGS
    -Wall -Wextra -Werror -Wformat=2 -Wmissing-field-initializers -Wshadow
    -Wsign-compare -Wtype-limits -Wvla -Wwrite-strings -Wimplicit-fallthrough
    -Wnon-virtual-dtor)
# Clang checks the lock annotations of base/thread_annotations.h at compile time (gcc has no
# such analysis; the macros expand to nothing there).
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND CTFS_WARNINGS -Wthread-safety)
endif()

# CTFS_SANITIZE (CMakeLists.txt): a false constant (OFF, 0, "") builds without sanitizers;
# "address" or a true constant (ON, the option's old boolean form) ASan+UBSan; "thread" TSan.
# ASan and TSan cannot share a binary, hence one value rather than two options.
set(CTFS_SANITIZER_FLAGS "")
string(TOLOWER "${CTFS_SANITIZE}" _ctfs_sanitize)
if(CTFS_BUILD_FUZZERS)
  # Fuzzer builds (cmake/CtfsFuzz.cmake): every library gets libFuzzer's coverage
  # instrumentation without its main(), so the fuzzers' coverage reaches our code.
  set(CTFS_SANITIZER_FLAGS -fsanitize=fuzzer-no-link,address,undefined
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(NOT CTFS_SANITIZE)
  # no sanitizer
elseif(_ctfs_sanitize STREQUAL "address" OR _ctfs_sanitize MATCHES "^(on|yes|true|y|1)$")
  set(CTFS_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
                           -fno-omit-frame-pointer)
elseif(_ctfs_sanitize STREQUAL "thread")
  # Frame pointers keep TSan's stacks of the earlier access (history) complete.
  set(CTFS_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
else()
  message(FATAL_ERROR "CTFS_SANITIZE=${CTFS_SANITIZE}: want OFF, address (or ON) or thread")
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
