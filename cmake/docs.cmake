# The API reference: `cmake --build <build> --target docs` runs Doxygen
# (Debian: doxygen) over the public headers into <build>/docs/html. The
# target exists only when doxygen is found. Undocumented members are not
# warned about (WARN_IF_UNDOCUMENTED off: many one-line accessors say
# enough by their names); everything Doxygen does warn about (a malformed
# comment, a \param that names no parameter) fails the target. The ctest
# `docs` (release builds with tests, not under the sanitizers: it checks
# the headers, not the code) runs the same Doxygen and fails on any warning
# or a missing page (cmake/check_docs.cmake).
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  return()
endif()
set(ATTNLAB_DOXYGEN_INPUT)
foreach(layer ${ATTNLAB_LAYERS})
  string(REGEX REPLACE "^attnlab_" "" dir ${layer})
  string(APPEND ATTNLAB_DOXYGEN_INPUT " \"${PROJECT_SOURCE_DIR}/${dir}\"")
endforeach()
string(APPEND ATTNLAB_DOXYGEN_INPUT " \"${PROJECT_SOURCE_DIR}/include/attnlab/attnlab.hpp\""
       " \"${PROJECT_BINARY_DIR}/include/attnlab/version.hpp\"")
configure_file(${CMAKE_CURRENT_LIST_DIR}/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)
add_custom_target(docs
  COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/docs/Doxyfile
  WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/docs
  COMMENT "API reference (Doxygen) in ${PROJECT_BINARY_DIR}/docs/html"
  VERBATIM)
if(ATTNLAB_BUILD_TESTS AND NOT ATTNLAB_SANITIZE)
  add_test(NAME docs COMMAND ${CMAKE_COMMAND} -DDOXYGEN=${DOXYGEN_EXECUTABLE}
                             -DDOCS_DIR=${PROJECT_BINARY_DIR}/docs
                             -P ${CMAKE_CURRENT_LIST_DIR}/check_docs.cmake)
endif()
