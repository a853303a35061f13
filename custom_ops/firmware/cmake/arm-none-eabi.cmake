# A CMake toolchain file for Cortex-M with Debian's (or Arm's) arm-none-eabi-gcc.
#   cmake -DCMAKE_TOOLCHAIN_FILE=custom_ops/firmware/cmake/arm-none-eabi.cmake \
#         -DTFLM_VIT_CPU=cortex-m7 -DTFLM_VIT_FLOAT_ABI=soft ...
# Use the same CPU and float ABI as your TFLM library (TFLM's cortex_m_qemu make target:
# soft float; an STM32F746 project: -mfpu=fpv5-sp-d16 -mfloat-abi=hard).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(TFLM_VIT_CPU "cortex-m7" CACHE STRING "-mcpu")
set(TFLM_VIT_FLOAT_ABI "soft" CACHE STRING "-mfloat-abi (soft, softfp, hard)")
set(TFLM_VIT_FPU "auto" CACHE STRING "-mfpu")
set(_tv_flags "-mcpu=${TFLM_VIT_CPU} -mthumb -mfloat-abi=${TFLM_VIT_FLOAT_ABI} -mfpu=${TFLM_VIT_FPU} -funsigned-char -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${_tv_flags}")
set(CMAKE_CXX_FLAGS_INIT "${_tv_flags}")
