# Debian packages: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (README: "Debian package"). Two packages, from
# the install components (cmake/install.cmake):
#   attnlab      the program, the corpus and the docs (and the shared layers
#                of a BUILD_SHARED_LIBS build)
#   attnlab-dev  headers, static layers, the CMake package and attnlab.pc
# Their dependencies are declared by hand, Debian 12 names: the run-time
# libraries the program links, and for -dev the -dev packages its CMake
# package and attnlab.pc find.
set(CPACK_PACKAGE_NAME attnlab)
set(CPACK_PACKAGE_VENDOR attnlab)
set(CPACK_PACKAGE_CONTACT "attnlab maintainers <attnlab@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "from-scratch C++ autograd library that trains tiny transformers on a CPU")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME attnlab)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION science)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS
    "libc6 (>= 2.36), libstdc++6 (>= 12), libgcc-s1, libgomp1, libopenblas0, libhwy1 (>= 1.0), libfmt9, libsentencepiece0")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME attnlab-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "attnlab (= ${PROJECT_VERSION}), libopenblas-dev, libhwy-dev, libfmt-dev, nlohmann-json3-dev, libsentencepiece-dev, g++ (>= 4:12), cmake (>= 3.25), pkg-config")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "attnlab program: train, inspect, convert and sample tiny transformers on a CPU (MHA, GQA, MQA, MLA attention; MoE), with the bundled tiny-shakespeare corpus")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "attnlab library: headers, static libraries, CMake package (attnlab::attnlab) and pkg-config file")
if(ATTNLAB_MPI)  # data-parallel training (train/communicator.hpp)
  string(APPEND CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS ", libopenmpi3")
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", libopenmpi-dev")
endif()
include(CPack)
