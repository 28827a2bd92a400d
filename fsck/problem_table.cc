// The problem table: one row per finding. Kept sorted by code (static_assert below); a unit test
// renders every row with every field set, so a misspelt placeholder fails the tests.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "fsck/problem.h"

namespace imgcheck::fsck {
namespace {

using S = Severity;

constexpr std::array kTable = {
    ProblemDef{P::kHeaderCorruptBit, "header.corrupt-bit", S::kError, false,
               "the corrupt bit (incompatible bit 1) is set: QEMU refuses to open the image "
               "read-write",
               "clear the bit once a re-check finds no errors"},
    ProblemDef{P::kHeaderDirtyBit, "header.dirty-bit", S::kWarning, false,
               "the dirty bit (incompatible bit 0) is set{detail}: refcounts may be stale and "
               "leaks are expected until they are rebuilt",
               "recompute refcounts from the L1/L2 tables, then clear the bit"},
    ProblemDef{P::kHeaderUnknownIncompatible, "header.unknown-incompatible-bit", S::kError, true,
               "{detail}: the image cannot be read safely", "none: use a newer tool"},
    ProblemDef{P::kHeaderUnknownCompatible, "header.unknown-compatible-bit", S::kWarning, false,
               "unknown compatible feature bit {index} ({name}) is set",
               "none: ignored by readers"},
    ProblemDef{P::kHeaderUnknownAutoclear, "header.unknown-autoclear-bit", S::kWarning, false,
               "unknown autoclear feature bit {index} ({name}) is set: QEMU clears it on the next "
               "read-write open",
               "clear the bit"},
    ProblemDef{P::kHeaderInvalidField, "header.invalid-field", S::kError, true,
               "invalid header: {detail}", "none: the header must be rewritten by hand"},
    ProblemDef{P::kHeaderExtensionInvalid, "header.extension-invalid", S::kError, true,
               "invalid header extension: {detail}", "none"},
    ProblemDef{P::kHeaderExtensionUnknown, "header.extension-unknown", S::kInfo, false, "{detail}",
               "none: QEMU preserves unknown extensions"},
    ProblemDef{P::kHeaderExtensionDuplicate, "header.extension-duplicate", S::kWarning, false,
               "{detail}", "none"},
    ProblemDef{P::kHeaderBitmapsAutoclearClear, "header.bitmaps-autoclear-clear", S::kWarning,
               false, "{detail}", "remove the bitmaps extension and free its clusters"},
    ProblemDef{P::kHeaderBitmapsBitWithoutExt, "header.bitmaps-bit-without-extension",
               S::kWarning, false, "{detail}", "clear autoclear bit 0"},
    ProblemDef{P::kHeaderOddField, "header.odd-field", S::kWarning, false, "{detail}", "none"},
    ProblemDef{P::kHeaderLegacyEncryption, "header.legacy-encryption", S::kWarning, false,
               "legacy AES-CBC encryption (crypt_method 1): insecure, and QEMU system emulators "
               "refuse it",
               "convert to LUKS with qemu-img convert"},
    ProblemDef{P::kHeaderDataFileNameWithoutBit, "header.data-file-name-without-bit",
               S::kWarning, false,
               "a data file name '{name}' is recorded but incompatible bit 2 is clear: it is "
               "ignored",
               "remove the extension"},

    ProblemDef{P::kL1EntryReservedBits, "l1.entry.reserved-bits", S::kError, false,
               "{owner} L1 entry {index} has reserved bits set (0x{value:016x})",
               "none: needs --allow-data-loss"},
    ProblemDef{P::kL1EntryUnaligned, "l1.entry.unaligned", S::kError, false,
               "{owner} L1 entry {index} points at L2 table offset 0x{offset:x}, which is not "
               "cluster aligned",
               "none: needs --allow-data-loss"},
    ProblemDef{P::kL1CopiedMismatch, "l1.copied-mismatch", S::kError, false,
               "an active L1 entry has the COPIED flag {detail} but its L2 table at 0x{offset:x} "
               "(cluster {cluster}) has refcount {value}",
               "set the COPIED flag to (refcount == 1)"},
    ProblemDef{P::kL2EntryReservedBits, "l2.entry.reserved-bits", S::kError, false,
               "{count} entries of the L2 table at 0x{offset:x} have reserved bits set (first: "
               "entry {index} = 0x{value:016x})",
               "none: needs --allow-data-loss"},
    ProblemDef{P::kL2EntryUnalignedData, "l2.entry.unaligned-data", S::kError, false,
               "L2 table at 0x{offset:x} entry {index}: data cluster offset 0x{value:x} is not "
               "cluster aligned{detail}",
               "none: the guest data there is lost; --allow-data-loss unmaps it"},
    ProblemDef{P::kL2EntryUnalignedPrealloc, "l2.entry.unaligned-prealloc", S::kError, false,
               "L2 table at 0x{offset:x} entry {index}: preallocated zero cluster offset 0x{value:x} "
               "is not cluster aligned{detail}",
               "make the entry a plain zero cluster (guest data unchanged)"},
    ProblemDef{P::kL2CopiedMismatch, "l2.copied-mismatch", S::kError, false,
               "an active L2 entry has the COPIED flag {detail} but its data cluster {cluster} "
               "(offset 0x{offset:x}) has refcount {value}",
               "set the COPIED flag to (refcount == 1)"},
    ProblemDef{P::kL2CompressedCopied, "l2.compressed.copied", S::kError, false,
               "L2 table at 0x{offset:x} entry {index}: compressed cluster has the COPIED flag",
               "clear the flag"},
    ProblemDef{P::kL2CompressedWithDataFile, "l2.compressed.with-data-file", S::kError, false,
               "L2 table at 0x{offset:x} entry {index}: compressed cluster in an image with an "
               "external data file",
               "none: needs --allow-data-loss"},
    ProblemDef{P::kL2CompressedSubclusterBitmap, "l2.compressed.subcluster-bitmap", S::kError,
               false,
               "L2 table at 0x{offset:x} entry {index}: compressed cluster with a non-zero "
               "subcluster bitmap 0x{value:016x}",
               "zero the bitmap"},
    ProblemDef{P::kL2CompressedBadData, "l2.compressed.bad-data", S::kError, false,
               "compressed cluster at host offset 0x{offset:x} ({value} bytes) does not "
               "decompress: {detail}",
               "none: the guest data there is lost"},
    ProblemDef{P::kL2SubclusterAllocZeroOverlap, "l2.subcluster.alloc-zero-overlap", S::kError,
               false,
               "L2 table at 0x{offset:x} entry {index}: subclusters both allocated and zero "
               "(bitmap 0x{value:016x}): QEMU returns I/O errors for them",
               "with --allow-data-loss: keep them allocated, clear their zero bits"},
    ProblemDef{P::kL2SubclusterUnallocatedAllocBits, "l2.subcluster.unallocated-alloc-bits",
               S::kError, false,
               "L2 table at 0x{offset:x} entry {index}: unallocated cluster with allocation bits "
               "0x{value:08x}: QEMU returns I/O errors for them",
               "with --allow-data-loss: clear the allocation bits"},

    ProblemDef{P::kRefcountLeak, "refcount.leak", S::kLeak, false,
               "{count} leaked cluster(s) from cluster {cluster} (offset 0x{offset:x}): refcount "
               "{value}, referenced {expected} time(s)",
               "lower the refcount to the number of references"},
    ProblemDef{P::kRefcountTooLow, "refcount.too-low", S::kError, false,
               "{count} cluster(s) from cluster {cluster} (offset 0x{offset:x}) have refcount "
               "{value} but are referenced {expected} time(s){detail}",
               "raise the refcount to the number of references"},
    ProblemDef{P::kRefcountOverflow, "refcount.overflow", S::kError, false,
               "cluster {cluster} (offset 0x{offset:x}) is referenced more than the refcount "
               "width allows ({value})",
               "none: widen refcounts with qemu-img amend -o refcount_bits=16"},
    ProblemDef{P::kReftableEntryReservedBits, "reftable.entry.reserved-bits", S::kError, false,
               "refcount table entry {index} has reserved bits set (0x{value:016x})",
               "rebuild the refcount structure"},
    ProblemDef{P::kReftableEntryUnaligned, "reftable.entry.unaligned", S::kError, false,
               "refcount table entry {index} points at refcount block offset 0x{offset:x}, which "
               "is not cluster aligned",
               "rebuild the refcount structure"},
    ProblemDef{P::kRefblockBeyondEof, "refblock.beyond-eof", S::kError, false,
               "refcount block {index} at 0x{offset:x} is outside the image",
               "rebuild the refcount structure"},
    ProblemDef{P::kRefblockRefcountNotOne, "refblock.refcount-not-one", S::kError, false,
               "refcount block {index} at 0x{offset:x} (cluster {cluster}) is referenced {value} "
               "times{detail}",
               "rebuild the refcount structure"},
    ProblemDef{P::kRefcountUnreadable, "refcount.unreadable", S::kError, true,
               "refcounts of {count} cluster(s) from cluster {cluster} cannot be read: {detail}",
               "rebuild the refcount structure"},

    ProblemDef{P::kRefBeyondEof, "ref.beyond-eof", S::kError, false,
               "{owner} at 0x{offset:x} ({value} bytes) reaches past the end of the file "
               "(0x{expected:x}) by a cluster or more",
               "none: needs --allow-data-loss"},
    ProblemDef{P::kOverlapMetadata, "overlap.metadata", S::kWarning, false,
               "cluster {cluster} (offset 0x{offset:x}) is used as {owner} and as {other}",
               "none: one of the two must be moved; needs --allow-data-loss"},
    ProblemDef{P::kImageDataAfterEnd, "image.data-after-end", S::kInfo, false,
               "the file is {value} bytes long, {expected} byte(s) past the image end offset "
               "0x{offset:x}",
               "truncate the file to the image end offset"},
    ProblemDef{P::kMetadataLimit, "metadata.limit", S::kError, true, "{detail}", "none"},

    ProblemDef{P::kSnapshotL1Unaligned, "snapshot.l1.unaligned", S::kError, false,
               "snapshot {index} (id '{name}') L1 table offset 0x{offset:x} is not cluster "
               "aligned: its references are not counted",
               "none: the snapshot is lost; --allow-data-loss deletes it"},
    ProblemDef{P::kSnapshotL1TooLarge, "snapshot.l1.too-large", S::kError, false,
               "snapshot {index} (id '{name}') L1 size {value} exceeds QEMU's limit",
               "none: --allow-data-loss deletes the snapshot"},
    ProblemDef{P::kSnapshotExtraDataTooSmall, "snapshot.extra-data-too-small", S::kError, false,
               "snapshot {index} (id '{name}') has {value} bytes of extra data; version 3 needs "
               "at least 16",
               "extend the extra data with the VM state size and disk size"},
    ProblemDef{P::kSnapshotExtraDataTooLarge, "snapshot.extra-data-too-large", S::kError, true,
               "snapshot {index} (id '{name}') has {value} bytes of extra data (QEMU allows "
               "1024)",
               "truncate the extra data"},
    ProblemDef{P::kSnapshotTableTooLarge, "snapshot.table-too-large", S::kError, true, "{detail}",
               "truncate the table to the valid entries"},
    ProblemDef{P::kSnapshotDuplicateId, "snapshot.duplicate-id", S::kWarning, false,
               "snapshots {expected} and {index} have the same id '{name}'", "none"},
    ProblemDef{P::kSnapshotDuplicateName, "snapshot.duplicate-name", S::kWarning, false,
               "snapshots {expected} and {index} have the same name '{name}'", "none"},
    ProblemDef{P::kSnapshotWithDataFile, "snapshot.with-data-file", S::kError, false,
               "{count} internal snapshot(s) in an image with an external data file", "none"},
    ProblemDef{P::kSnapshotEntryTruncated, "snapshot.entry-truncated", S::kError, true,
               "{detail}", "truncate the table to the valid entries"},
    ProblemDef{P::kSnapshotTableUnaligned, "snapshot.table-unaligned", S::kError, true,
               "snapshot table offset 0x{offset:x} is not cluster aligned", "none"},
    ProblemDef{P::kSnapshotDiskSizeMismatch, "snapshot.disk-size-mismatch", S::kWarning, false,
               "snapshot {index} (id '{name}') records disk size {value} but its L1 table of "
               "{expected} entries cannot map it",
               "none"},

    ProblemDef{P::kBitmapInUse, "bitmap.in-use", S::kWarning, false,
               "bitmap '{name}' is marked in use: it was not saved cleanly and is inconsistent",
               "none: delete and recreate the bitmap (qemu-img bitmap --remove/--add)"},
    ProblemDef{P::kBitmapDirectoryInvalid, "bitmap.directory.invalid", S::kError, true,
               "bitmap directory at 0x{offset:x}: {detail}", "none"},
    ProblemDef{P::kBitmapTableEntryInvalid, "bitmap.table.entry-invalid", S::kError, false,
               "bitmap '{name}' table entry {index} is invalid (0x{value:016x}){detail}",
               "none"},
    ProblemDef{P::kBitmapEntryInvalid, "bitmap.entry.invalid", S::kError, true,
               "bitmap '{name}': {detail}", "none"},
    ProblemDef{P::kBitmapNameDuplicate, "bitmap.name-duplicate", S::kError, false,
               "two bitmaps are named '{name}'", "none"},

    ProblemDef{P::kChainBackingMissing, "chain.backing-missing", S::kError, false,
               "backing file '{name}' not found: tried {other} ({detail}): {owner}",
               "restore the base image, or point the overlay at it with "
               "imgcheck repair --rebase-backing NEWPATH"},
    ProblemDef{P::kChainBackingUnreadable, "chain.backing-unreadable", S::kError, false,
               "backing file '{name}' cannot be opened: tried {other} ({detail}): {owner}",
               "fix the permissions of the file and of every directory on its path"},
    ProblemDef{P::kChainLoop, "chain.loop", S::kError, false,
               "the backing chain loops back to {other}: {detail}",
               "rebase one image of the loop onto the real base"},
    ProblemDef{P::kChainTooDeep, "chain.too-deep", S::kError, false,
               "the backing chain is deeper than {value} images; the check stopped at '{name}'",
               "commit or stream the chain into fewer images (qemu-img commit / rebase)"},
    ProblemDef{P::kChainFormatMismatch, "chain.format-mismatch", S::kError, false,
               "backing file '{name}' is recorded as {other} but is {owner}{detail}",
               "record the real format: qemu-img rebase -u -b NAME -F FORMAT"},
    ProblemDef{P::kChainNoBackingFormat, "chain.no-backing-format", S::kWarning, false,
               "backing file '{name}' has no recorded format: QEMU would probe it ({other} "
               "here), which a guest can subvert",
               "record the format: qemu-img rebase -u -b NAME -F {other}"},
    ProblemDef{P::kChainBackingProtocol, "chain.backing-protocol", S::kError, false,
               "backing file name '{name}' uses the {other} protocol: not opened (it can reach "
               "host files or the network)",
               "rebase onto a plain image path"},
    ProblemDef{P::kChainBackingNotImage, "chain.backing-not-image", S::kError, false,
               "backing file {other} is not a disk image: {detail}",
               "rebase onto the real base image"},
    ProblemDef{P::kChainBackingLarger, "chain.backing-larger", S::kInfo, false,
               "backing file '{name}' has virtual size {value}, larger than the overlay's "
               "{expected}",
               "none"},
    ProblemDef{P::kChainBackingUnchecked, "chain.backing-unchecked", S::kInfo, false,
               "backing file {other} is a {name} image: its format is not checked", "none"},
    ProblemDef{P::kChainBackingCheckFailed, "chain.backing-check-failed", S::kError, true,
               "backing file {other} could not be checked: {detail}", "none"},
    ProblemDef{P::kDataFileMissing, "datafile.missing", S::kError, false,
               "external data file '{name}' not found: tried {other} ({detail}): {owner}",
               "restore the data file"},
    ProblemDef{P::kDataFileUnreadable, "datafile.unreadable", S::kError, false,
               "external data file '{name}' cannot be opened: tried {other} ({detail}): {owner}",
               "fix the permissions of the file and its directories"},
    ProblemDef{P::kDataFileShort, "datafile.short", S::kError, false,
               "external data file {other} is {value} bytes but the image maps data up to "
               "0x{expected:x}",
               "none: the guest data past its end is lost"},
    ProblemDef{P::kDataFileNotImage, "datafile.not-image", S::kError, false,
               "external data file {other} is not disk data: {detail}", "none"},
    ProblemDef{P::kDataFileProtocol, "datafile.protocol", S::kError, false,
               "external data file name '{name}' uses the {other} protocol: not opened", "none"},

    ProblemDef{P::kUntrustedBackingFile, "untrusted.backing-file", S::kError, false,
               "untrusted image names a backing file '{name}': not opened",
               "accept only self-contained images (qemu-img convert flattens a chain)"},
    ProblemDef{P::kUntrustedDataFile, "untrusted.data-file", S::kError, false,
               "untrusted image names an external data file '{name}': not opened "
               "(CVE-2024-32498: it can expose host files)",
               "accept only self-contained images"},
    ProblemDef{P::kImageInUse, "image.in-use", S::kWarning, false,
               "another process holds QEMU's locks on this image ({detail}): it is in use, and "
               "a check of a live image can show false findings",
               "check a copy, or stop the VM first"},
    ProblemDef{P::kHostSpaceShort, "host.space-short", S::kWarning, false,
               "the image can still grow by {value} bytes but its filesystem has only {expected} "
               "bytes free: a full host disk pauses or crashes the VM",
               "free space, or move the image"},

    ProblemDef{P::kGuestNotRun, "guest.not-run", S::kWarning, false,
               "guest checks did not run: {detail}", "see the reason; the format results stand"},
    ProblemDef{P::kGuestNoOs, "guest.no-os", S::kWarning, false,
               "no operating system found on the disks: {detail}", "check the disk order and "
               "that every disk of the VM is given"},
    ProblemDef{P::kGuestTcgFallback, "guest.tcg-fallback", S::kInfo, false, "{detail}", "none"},
    ProblemDef{P::kFstabRawDevice, "fstab.raw-device", S::kError, false,
               "{file}:{line}: {name} is mounted from the kernel device name {evidence}, which "
               "changes with the disk order{detail}",
               "use UUID= (or LABEL=) for it"},
    ProblemDef{P::kFstabUnresolved, "fstab.unresolved", S::kError, false,
               "{file}:{line}: {evidence} for {name} matches no device in the guest{detail}",
               "correct the entry, or add nofail if the device is optional"},
    ProblemDef{P::kFstabTypeMismatch, "fstab.type-mismatch", S::kError, false,
               "{file}:{line}: {name} is declared {other} but the filesystem there is {detail}",
               "declare the real type"},
    ProblemDef{P::kFstabMountpointMissing, "fstab.mountpoint-missing", S::kWarning, false,
               "{file}:{line}: mount point {name} does not exist in the guest", "create it"},
    ProblemDef{P::kFstabNoNofail, "fstab.no-nofail", S::kWarning, false,
               "{file}:{line}: {name} is not needed to boot but has no nofail: if its disk is "
               "missing the VM stops in the emergency shell",
               "add nofail to its options"},
    ProblemDef{P::kFstabNetfsNoNetdev, "fstab.netfs-no-netdev", S::kWarning, false,
               "{file}:{line}: network filesystem {name} ({other}) without _netdev", "add _netdev"},
    ProblemDef{P::kFstabDuplicateMountpoint, "fstab.duplicate-mountpoint", S::kError, false,
               "{file}:{line}: {name} is mounted twice (also line {value})", "remove one"},
    ProblemDef{P::kFstabSwapMissing, "fstab.swap-missing", S::kWarning, false,
               "{file}:{line}: swap {evidence} matches no device in the guest", "fix or remove it"},
    ProblemDef{P::kFstabMalformed, "fstab.malformed", S::kError, false,
               "{file}:{line}: cannot parse: {detail}", "rewrite the line"},
    ProblemDef{P::kFstabDeviceAbsent, "fstab.device-absent", S::kError, false,
               "{file}:{line}: {name} is mounted from {evidence}, which does not exist on this "
               "VM{detail}",
               "use UUID= (or LABEL=) for it"},
    ProblemDef{P::kGrubNoConfig, "grub.no-config", S::kError, false,
               "no GRUB configuration found{detail}", "install GRUB and generate grub.cfg"},
    ProblemDef{P::kGrubKernelMissing, "grub.kernel-missing", S::kError, false,
               "{file}:{line}: boot entry '{name}' loads kernel {evidence}, which {detail}",
               "install the kernel or regenerate grub.cfg"},
    ProblemDef{P::kGrubInitrdMissing, "grub.initrd-missing", S::kError, false,
               "{file}:{line}: boot entry '{name}' loads initramfs {evidence}, which {detail}",
               "rebuild the initramfs (dracut -f / update-initramfs -u)"},
    ProblemDef{P::kGrubRootUnresolved, "grub.root-unresolved", S::kError, false,
               "{file}:{line}: boot entry '{name}' has {evidence}, which matches no device{detail}",
               "point root= at the real root filesystem"},
    ProblemDef{P::kGrubLvmLvMissing, "grub.lvm-lv-missing", S::kError, false,
               "{file}:{line}: boot entry '{name}' has {evidence}, but that logical volume does "
               "not exist{detail}",
               "name an existing LV, or regenerate grub.cfg"},
    ProblemDef{P::kGrubResumeUnresolved, "grub.resume-unresolved", S::kWarning, false,
               "{file}:{line}: boot entry '{name}' has {evidence}, which matches no device{detail}",
               "fix or remove resume="},
    ProblemDef{P::kGrubSearchUnresolved, "grub.search-unresolved", S::kError, false,
               "{file}:{line}: {evidence} names no filesystem in the guest", "regenerate grub.cfg"},
    ProblemDef{P::kGrubCmdlineInconsistent, "grub.cmdline-inconsistent", S::kWarning, false,
               "{file}: {detail}", "regenerate grub.cfg (grub2-mkconfig / update-grub)"},
    ProblemDef{P::kGrubDefaultMissing, "grub.default-missing", S::kError, false,
               "{file}: the default entry {evidence} does not exist", "set GRUB_DEFAULT / "
               "saved_entry to an existing entry"},
    ProblemDef{P::kLvmVgPartial, "lvm.vg-partial", S::kError, false,
               "volume group {name} is missing {value} physical volume(s){detail}",
               "give every disk of the VM, in order"},
    ProblemDef{P::kLvmDuplicateVg, "lvm.duplicate-vg", S::kError, false,
               "volume group name {name} appears on several disks ({detail}): clones of one "
               "template; LVM activates only one",
               "rename with vgimportclone"},
    ProblemDef{P::kLvmDuplicatePv, "lvm.duplicate-pv", S::kError, false,
               "physical volume UUID {name} is on {detail}", "give clones new PV UUIDs "
               "(vgimportclone)"},
    ProblemDef{P::kLvmFilterHidesPv, "lvm.filter-hides-pv", S::kWarning, false,
               "{file}:{line}: {evidence} would hide the guest's own physical volume {name}",
               "fix the filter"},
    ProblemDef{P::kLvmDevicesFileHidesPv, "lvm.devices-file-hides-pv", S::kWarning, false,
               "{file}: the LVM devices file lists none of the guest's physical volumes "
               "({detail}): LVM in the guest will not see them",
               "remove the file or regenerate it (vgimportdevices -a)"},
    ProblemDef{P::kInitramfsUnreadable, "initramfs.unreadable", S::kError, false,
               "{file}: cannot read the initramfs: {detail}", "rebuild the initramfs"},
    ProblemDef{P::kInitramfsNoVirtio, "initramfs.no-virtio", S::kError, false,
               "{file}: the initramfs of kernel {name} has no {detail}, and the kernel does not "
               "build it in: the root disk ({other}) will not appear",
               "rebuild it with the drivers (dracut -f --add-drivers \"virtio_blk virtio_scsi "
               "virtio_pci\")"},
    ProblemDef{P::kInitramfsNoRootfsDriver, "initramfs.no-rootfs-driver", S::kWarning, false,
               "{file}: the initramfs of kernel {name} has no {other} module and the kernel does "
               "not build it in", "rebuild the initramfs"},
    ProblemDef{P::kInitramfsNoBusDriver, "initramfs.no-bus-driver", S::kError, false,
               "{file}: the initramfs of kernel {name} has no {detail}, and the kernel does not "
               "build it in: the root disk ({other}) will not appear",
               "rebuild it with the driver (dracut -f --add-drivers DRIVER, or list it in "
               "/etc/initramfs-tools/modules and run update-initramfs -u)"},
    ProblemDef{P::kPartMbrSignature, "part.mbr-signature", S::kError, false,
               "{name}: the MBR has no 0x55AA signature", "rewrite the partition table"},
    ProblemDef{P::kPartGptHeaderCrc, "part.gpt-header-crc", S::kError, false,
               "{name}: the {other} GPT header CRC is wrong{detail}", "repair with gdisk / sgdisk -e"},
    ProblemDef{P::kPartGptEntriesCrc, "part.gpt-entries-crc", S::kError, false,
               "{name}: the {other} GPT partition entries CRC is wrong", "repair with gdisk"},
    ProblemDef{P::kPartGptBackupMisplaced, "part.gpt-backup-misplaced", S::kWarning, false,
               "{name}: the backup GPT header is at sector {value}, not at the last sector "
               "{expected} (the disk was resized)",
               "move it to the end: sgdisk -e {name}"},
    ProblemDef{P::kPartBeyondDisk, "part.beyond-disk", S::kError, false,
               "{name}: partition {index} ends at sector {value}, beyond the disk ({expected} "
               "sectors)", "fix the partition table"},
    ProblemDef{P::kPartOverlap, "part.overlap", S::kError, false,
               "{name}: partitions {index} and {value} overlap", "fix the partition table"},
    ProblemDef{P::kPartNoEsp, "part.no-esp", S::kWarning, false,
               "{name}: GPT disk without an EFI system partition: it cannot boot with UEFI{detail}",
               "add an ESP if the VM boots with UEFI"},
    ProblemDef{P::kPartNoBiosBoot, "part.no-bios-boot", S::kWarning, false,
               "{name}: GPT disk without a BIOS boot partition: GRUB cannot boot it with BIOS{detail}",
               "add a 1 MiB BIOS boot partition (type EF02) if the VM boots with BIOS"},
    ProblemDef{P::kFsDirtyJournal, "fs.dirty-journal", S::kInfo, false,
               "{name} ({other}) has a journal to replay: it was not unmounted cleanly",
               "none: replayed at the next mount"},
    ProblemDef{P::kFsCorrupt, "fs.corrupt", S::kError, false,
               "{name} ({other}) is inconsistent: {detail}", "run fsck on it (offline)"},
    ProblemDef{P::kFsCheckIncomplete, "fs.check-incomplete", S::kWarning, false,
               "{name} ({other}) was not fully checked: {detail}",
               "check it where it runs faster (KVM, or fsck -n on the host)"},
    ProblemDef{P::kHygieneMachineId, "hygiene.machine-id", S::kWarning, false,
               "{file} is not empty: every VM cloned from this template gets the same machine id",
               "truncate it (virt-sysprep --operations machine-id)"},
    ProblemDef{P::kHygieneSshHostKeys, "hygiene.ssh-host-keys", S::kWarning, false,
               "host keys of the SSH server are present ({detail}): every clone shares them",
               "remove them (virt-sysprep --operations ssh-hostkeys)"},
    ProblemDef{P::kHygieneCloudInitState, "hygiene.cloud-init-state", S::kWarning, false,
               "cloud-init state present ({detail}): clones will not run first-boot setup",
               "cloud-init clean (virt-sysprep --operations cloud-init)"},
    ProblemDef{P::kHygienePersistentNetRules, "hygiene.persistent-net-rules", S::kWarning, false,
               "{file} pins interface names to MAC addresses ({detail})",
               "remove it (virt-sysprep --operations udev-persistent-net)"},

    ProblemDef{P::kPolicyViolation, "policy.violation", S::kError, false,
               "policy rule {name}: {detail}", "change the image, or the policy"},

    ProblemDef{P::kFormatDeclaredMismatch, "format.declared-mismatch", S::kError, false,
               "{name} is declared {other} but the file is {owner}{detail}",
               "declare the format the file really has (libvirt <driver type>, imgcheck "
               "--format)"},
    ProblemDef{P::kFormatRawHoldsHeader, "format.raw-holds-header", S::kError, false,
               "{name} is declared raw but starts with a {owner} header{detail}: the guest reads "
               "the {owner} metadata as its disk (as a boot disk: \"No bootable device\")",
               "if the file really is an image of that format, declare it so (libvirt <driver "
               "type>, imgcheck --format); a file declared raw is never repaired"},
    ProblemDef{P::kVmAssumedDefaults, "vm.assumed-defaults", S::kInfo, false,
               "no libvirt domain given: the guest checks assume {detail}",
               "give the VM's domain (--domain-xml FILE, or -d NAME) to check it as it runs"},
    ProblemDef{P::kVmDiskNotCheckable, "vm.disk-not-checkable", S::kWarning, false,
               "disk {name} of domain {other} cannot be checked offline: {detail}",
               "check that disk where it lives"},
    ProblemDef{P::kVmDeviceSkipped, "vm.device-skipped", S::kInfo, false,
               "device {name} of domain {other}: {detail}", "none"},
    ProblemDef{P::kVmIdeOnQ35, "vm.ide-on-q35", S::kError, false,
               "disk {name} is on bus ide, but machine type {other} (q35) has no IDE controller: "
               "libvirt refuses to start the domain (\"IDE controllers are unsupported for this "
               "QEMU binary or machine type\")",
               "attach it as sata (or virtio)"},
    ProblemDef{P::kVmBackingFormatMissing, "vm.backing-format-missing", S::kError, false,
               "libvirt refuses to start the VM: format of backing image '{name}' of image "
               "'{other}' was not specified in the image metadata (See "
               "https://libvirt.org/kbase/backing_chains.html for troubleshooting)",
               "record the format: qemu-img rebase -u -F FORMAT -b BASE IMAGE"},
    ProblemDef{P::kVmBackingMismatch, "vm.backing-mismatch", S::kError, false,
               "disk {name}: the domain's <backingStore> declares {other}, but {detail}",
               "make <backingStore> match the images, or remove it (libvirt then reads the chain "
               "from the image headers)"},
    ProblemDef{P::kVmStorageAccessDenied, "vm.storage-access-denied", S::kError, false,
               "libvirt refuses to start the VM: Cannot access storage file '{name}' (as "
               "uid:{value}, gid:{expected}): {detail}",
               "give the qemu user search (x) permission on every directory of the path "
               "(chmod o+x DIR, or setfacl -m u:USER:x DIR)"},
    ProblemDef{P::kVmBackingAccessDenied, "vm.backing-access-denied", S::kError, false,
               "libvirt refuses to start the VM: Cannot access backing file '{name}' of storage "
               "file '{other}' (as uid:{value}, gid:{expected}): {detail}",
               "give the qemu user search (x) permission on every directory of the path "
               "(chmod o+x DIR, or setfacl -m u:USER:x DIR)"},
    ProblemDef{P::kVmOpenDenied, "vm.open-denied", S::kError, false,
               "the VM does not start: QEMU, as uid:{value}, gid:{expected}, cannot open '{name}' "
               "(\"Could not open '{name}': Permission denied\"): {detail}",
               "let libvirt relabel the image (dynamic_ownership, seclabel relabel), or give the "
               "qemu user access to it"},
    ProblemDef{P::kVmFirmwareFileMissing, "vm.firmware-file-missing", S::kError, false,
               "the domain's {other} '{name}' {detail}: libvirt cannot start the VM",
               "install the firmware (Debian: ovmf) or correct the path"},
    ProblemDef{P::kVmAccessUnknown, "vm.access-unknown", S::kInfo, false,
               "whether the qemu user can reach '{name}' was not computed: {detail}", "none"},
    ProblemDef{P::kVmUefiNoBootloader, "vm.uefi-no-bootloader", S::kError, false,
               "the VM boots with UEFI but {detail}: the firmware finds nothing to boot "
               "(\"BdsDxe: No bootable option or device was found.\")",
               "install the boot loader at the ESP's removable path too (grub-install "
               "--removable: EFI/BOOT/BOOTX64.EFI), or boot with BIOS"},
    ProblemDef{P::kVmBiosNoBootCode, "vm.bios-no-boot-code", S::kError, false,
               "the VM boots with BIOS from {name} but {detail}: SeaBIOS stops at \"Boot failed: "
               "not a bootable disk\"",
               "install GRUB for BIOS (grub-install --target=i386-pc, with a BIOS boot partition "
               "on GPT), or boot with UEFI (<os firmware='efi'>)"},
};

constexpr bool Sorted() {
  for (size_t i = 1; i < kTable.size(); ++i) {
    if (static_cast<uint16_t>(kTable[i - 1].code) >= static_cast<uint16_t>(kTable[i].code)) {
      return false;
    }
  }
  return true;
}
static_assert(Sorted(), "problem table must be sorted by code, without duplicates");

}  // namespace

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kLeak: return "leak";
    case Severity::kError: return "error";
  }
  return "?";
}

std::span<const ProblemDef> ProblemTable() { return kTable; }

const ProblemDef& Def(P code) {
  auto it = std::lower_bound(kTable.begin(), kTable.end(), code,
                             [](const ProblemDef& d, P c) { return d.code < c; });
  return *it;  // every P has a row: the unit test checks it
}

std::string Render(const ProblemDef& def, const Fields& f) {
  return fmt::format(fmt::runtime(def.message), fmt::arg("offset", f.offset.value_or(0)),
                     fmt::arg("cluster", f.cluster.value_or(0)), fmt::arg("count", f.count),
                     fmt::arg("index", f.index), fmt::arg("value", f.value),
                     fmt::arg("expected", f.expected), fmt::arg("name", f.name),
                     fmt::arg("owner", f.owner), fmt::arg("other", f.other),
                     fmt::arg("detail", f.detail), fmt::arg("file", f.file),
                     fmt::arg("line", f.line), fmt::arg("evidence", f.evidence));
}

}  // namespace imgcheck::fsck
