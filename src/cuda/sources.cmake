# The CUDA backend and its kernels; include()d from the top-level
# CMakeLists.txt (CMAKE_CURRENT_SOURCE_DIR is the repository root there) and
# from tests/gpu/CMakeLists.txt in its standalone mode.
set(FLASHKMEANS_CUDA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/cuda_backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/cuda_search.cu
  ${CMAKE_CURRENT_LIST_DIR}/cuda_checks.cu
  ${CMAKE_CURRENT_LIST_DIR}/device_buffer.cu
  ${CMAKE_CURRENT_LIST_DIR}/device_data.cu
  ${CMAKE_CURRENT_LIST_DIR}/streaming.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/assign.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/topk_assign.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/update.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/norms.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/scratch.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/device_props.cu
  ${CMAKE_CURRENT_LIST_DIR}/../../kernels/tensor_map.cu
)
