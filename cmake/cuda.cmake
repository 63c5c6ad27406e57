# The CUDA backend (src/cuda): built when nvcc is found, unless RMSPROP_CUDA=OFF. Without it
# the library keeps the same rmsprop::cuda functions, which throw NotBuiltWithCuda.
set(RMSPROP_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON, OFF")
set_property(CACHE RMSPROP_CUDA PROPERTY STRINGS AUTO ON OFF)

set(RMSPROP_HAS_CUDA OFF)
if(NOT RMSPROP_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(RMSPROP_HAS_CUDA ON)
  elseif(RMSPROP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RMSPROP_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()

if(NOT RMSPROP_HAS_CUDA)
  message(STATUS "CUDA backend: off (rmsprop::cuda functions throw NotBuiltWithCuda)")
  target_sources(rmsprop_core PRIVATE src/cuda/unavailable.cpp)
  return()
endif()

# Ampere and Hopper machine code, plus Hopper PTX that newer GPUs compile when loading.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
# CMake 3.25 predates nvcc's C++20 (CUDA 12): teach it the flag, so that targets asking for
# C++20 (cxx_std_20 covers CUDA sources too) compile instead of failing to configure.
if(NOT "cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set_target_properties(rmsprop_core PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
message(STATUS "CUDA backend: on (${CMAKE_CUDA_COMPILER}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

# NOTE: [kernel flags] for CUDA: --fmad=false is -ffp-contract=off (the same roundings as the
# CPU kernels); division and sqrt stay IEEE (no --use_fast_math); the rule's constexpr helpers
# are called from device code.
set(RMSPROP_CUDA_FLAGS --fmad=false --expt-relaxed-constexpr -O3)

# One object library per parameter type, each instantiating its part of the kernel table.
set(rmsprop_cuda_objects)
foreach(param 0 1 2 3)
  add_library(rmsprop_cuda_step_${param} OBJECT src/cuda/step_instances.cu)
  target_compile_definitions(rmsprop_cuda_step_${param} PRIVATE RMSPROP_CUDA_PARAM=${param})
  target_include_directories(rmsprop_cuda_step_${param} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_compile_options(rmsprop_cuda_step_${param} PRIVATE ${RMSPROP_CUDA_FLAGS})
  set_target_properties(rmsprop_cuda_step_${param} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  list(APPEND rmsprop_cuda_objects $<TARGET_OBJECTS:rmsprop_cuda_step_${param}>)
endforeach()

target_sources(rmsprop_core PRIVATE src/cuda/backend.cu ${rmsprop_cuda_objects})
set_source_files_properties(src/cuda/backend.cu PROPERTIES COMPILE_OPTIONS "${RMSPROP_CUDA_FLAGS}")
# The static runtime: no libcudart.so to find at run time (the Python extension and the CLI
# load anywhere); the driver is loaded when first used, so a machine without one still runs
# everything else and reports no device.
target_link_libraries(rmsprop_core PUBLIC CUDA::cudart_static)
target_compile_definitions(rmsprop_core PUBLIC RMSPROP_HAS_CUDA=1)
