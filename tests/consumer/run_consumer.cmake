# The consumer tests' driver (tests/consumer/README.md), run by ctest as
#   cmake -DSTEP=<step> -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [...] -P run_consumer.cmake
# STEP install: `cmake --install` the build into WORK_DIR/prefix, and check
#               that no installed text file names the source or build tree;
#               shared layers (BUILD_SHARED_LIBS) must come with their SONAME
#               links (libattnlab_tensor.so → .so.<major>.<minor> → .so.<version>).
# STEP cmake:   configure, build and run tests/consumer (find_package).
# STEP pkgconfig: compile tests/consumer/consumer.cpp with pkg-config's flags, run it.
# STEP example: examples/train_tiny_model.cpp, copied unchanged next to
#               tests/consumer/example/CMakeLists.txt, built into
#               WORK_DIR/prefix/bin so that it finds the installed corpus
#               (../share/attnlab/data), and run.
# CXX, LAUNCHER and FLAGS (the sanitizers of the asan preset) are passed on.
cmake_minimum_required(VERSION 3.25)
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "failed (${result}): ${command}")
  endif()
endfunction()

function(configure_and_build source build)
  run(${CMAKE_COMMAND} -S ${source} -B ${build} -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
      -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} "-DCMAKE_CXX_FLAGS=${FLAGS}"
      "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}" ${ARGN})
  run(${CMAKE_COMMAND} --build ${build})
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE ${WORK_DIR})
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
  file(GLOB_RECURSE text_files ${prefix}/lib*/*.cmake ${prefix}/lib*/*.pc ${prefix}/include/*)
  foreach(file ${text_files})
    file(READ ${file} content)
    foreach(tree ${SOURCE_DIR} ${BUILD_DIR})
      string(FIND "${content}" "${tree}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${file} names ${tree}: an installed file must not point into the "
                            "source or build tree")
      endif()
    endforeach()
  endforeach()
  file(GLOB shared_layers ${prefix}/lib*/libattnlab_*.so)
  foreach(link ${shared_layers})
    file(GLOB versions ${link}.*.*)
    list(LENGTH versions n)
    if(NOT n EQUAL 2)
      message(FATAL_ERROR "${link}: want the .so.<major>.<minor> link and the .so.<version> file, "
                          "found '${versions}'")
    endif()
  endforeach()
  if(shared_layers)
    run(${prefix}/bin/attnlab --version)  # finds its layers through its RPATH, $ORIGIN/../lib
  endif()
elseif(STEP STREQUAL "cmake")
  configure_and_build(${SOURCE_DIR}/tests/consumer ${WORK_DIR}/cmake)
  run(${WORK_DIR}/cmake/consumer)
elseif(STEP STREQUAL "pkgconfig")
  find_program(PKG_CONFIG pkg-config REQUIRED)
  file(GLOB pc_dirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} "${pc_dirs}")
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs attnlab OUTPUT_VARIABLE flags
                  OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  separate_arguments(extra UNIX_COMMAND "${FLAGS}")
  file(MAKE_DIRECTORY ${WORK_DIR}/pkgconfig)
  run(${LAUNCHER} ${CXX} -O1 ${extra} ${SOURCE_DIR}/tests/consumer/consumer.cpp ${flags}
      -o ${WORK_DIR}/pkgconfig/consumer)
  # pkg-config gives -L only: with shared layers the loader needs their place too.
  file(GLOB lib_dirs ${prefix}/lib*)
  string(REPLACE ";" ":" lib_dirs "${lib_dirs}")
  run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${lib_dirs} ${WORK_DIR}/pkgconfig/consumer)
elseif(STEP STREQUAL "example")
  file(COPY ${SOURCE_DIR}/tests/consumer/example/CMakeLists.txt
            ${SOURCE_DIR}/examples/train_tiny_model.cpp DESTINATION ${WORK_DIR}/example-src)
  configure_and_build(${WORK_DIR}/example-src ${WORK_DIR}/example
                      -DCMAKE_RUNTIME_OUTPUT_DIRECTORY=${prefix}/bin)
  run(${prefix}/bin/train_tiny_model)
else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
