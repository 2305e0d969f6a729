"""What every layer may use: the device, CPU threads, the process group under torchrun, atomic file
writes and the version. Nothing here knows about data, models or runs."""
