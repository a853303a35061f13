"""Our ops on Cortex-M: where the C sources are, TFLM builds for the emulated
Cortex-M4 / M7 under QEMU (`qemu`), counting their instructions (`instructions`) and
checking models there against the wheel and the memory model (`on_target`).

The tests and the benchmarks share these; a firmware user needs only the C sources
(`SOURCES`: custom_ops/, installed with the package) and their own TFLM build."""
