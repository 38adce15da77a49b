# The `docs` ctest (cmake/docs.cmake), run as
#   cmake -DDOXYGEN=... -DDOCS_DIR=<build>/docs -P check_docs.cmake
# Runs Doxygen over the public headers as the `docs` target does and fails
# when it reports anything at all (a warning is an error: WARN_AS_ERROR in
# the Doxyfile, and any text on stderr counts too), or when the reference
# lacks its index or the pages of the main classes.
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE ${DOCS_DIR}/html)
execute_process(COMMAND ${DOXYGEN} ${DOCS_DIR}/Doxyfile WORKING_DIRECTORY ${DOCS_DIR}
                RESULT_VARIABLE result ERROR_VARIABLE warnings OUTPUT_VARIABLE output)
if(NOT result EQUAL 0 OR NOT warnings STREQUAL "")
  message(FATAL_ERROR "doxygen failed (${result}) or warned:\n${warnings}${output}")
endif()
foreach(page index.html classattnlab_1_1Tensor.html classattnlab_1_1Variable.html
             classattnlab_1_1LanguageModel.html classattnlab_1_1Decoder.html
             structattnlab_1_1ModelConfig.html)
  if(NOT EXISTS ${DOCS_DIR}/html/${page})
    message(FATAL_ERROR "the API reference has no ${page}")
  endif()
endforeach()
