"""vm/: a throwaway QEMU guest for air-gapped builds, hosts that block user namespaces, and tests
that need other kernel settings.

- `recipe`: the inputs of the guest artifacts and their hash (pure, plus one apt-cache query);
- `kernel`, `rootfs`: build the kernel + initramfs and the squashfs root, without root;
- `artifacts`: the cache of built artifacts, built atomically under a lock;
- `shares`, `job`, `qemu`: the share specs, the guest's job script and the QEMU argv (pure values);
- `accel`: KVM only after a probe boot proved it works, else TCG;
- `runner`: boot a guest, stream its output, return its status, leave no QEMU behind;
- `vmbuild`, `merge`: `chrootforge build --vm` (the build in a guest, results merged into the host);
- `cli`: `chrootforge vm run|prepare`.
"""
