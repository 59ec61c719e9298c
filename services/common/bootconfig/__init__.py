"""What the conductor and the boot service share: the desired boot schema, the kernel
parameters and safe values of boot answers, served file names, the image cache."""
