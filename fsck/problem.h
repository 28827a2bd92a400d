// Every finding imgcheck can report is one row of the problem table (problem_table.cc): a
// stable numeric code and slug, a severity, a message template with named fields, and the fix
// that repair would apply. Codes never change meaning once released. Guest checks use 9000-9899,
// the VM (declared formats, libvirt domains, permissions, firmware) 10001-10999.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace imgcheck::fsck {

enum class Severity : uint8_t { kInfo, kWarning, kLeak, kError };
std::string_view SeverityName(Severity s);

enum class P : uint16_t {
  // header (1xxx)
  kHeaderCorruptBit = 1001,
  kHeaderDirtyBit = 1002,
  kHeaderUnknownIncompatible = 1003,
  kHeaderUnknownCompatible = 1004,
  kHeaderUnknownAutoclear = 1005,
  kHeaderInvalidField = 1006,
  kHeaderExtensionInvalid = 1007,
  kHeaderExtensionUnknown = 1008,
  kHeaderExtensionDuplicate = 1009,
  kHeaderBitmapsAutoclearClear = 1010,
  kHeaderBitmapsBitWithoutExt = 1011,
  kHeaderOddField = 1012,
  kHeaderLegacyEncryption = 1013,
  kHeaderDataFileNameWithoutBit = 1014,
  // L1 / L2 (2xxx)
  kL1EntryReservedBits = 2001,
  kL1EntryUnaligned = 2002,
  kL1CopiedMismatch = 2003,
  kL2EntryReservedBits = 2010,
  kL2EntryUnalignedData = 2011,
  kL2EntryUnalignedPrealloc = 2012,
  kL2CopiedMismatch = 2013,
  kL2CompressedCopied = 2014,
  kL2CompressedWithDataFile = 2015,
  kL2CompressedSubclusterBitmap = 2016,
  kL2CompressedBadData = 2017,
  kL2SubclusterAllocZeroOverlap = 2018,
  kL2SubclusterUnallocatedAllocBits = 2019,
  // refcounts (3xxx)
  kRefcountLeak = 3001,
  kRefcountTooLow = 3002,
  kRefcountOverflow = 3003,
  kReftableEntryReservedBits = 3004,
  kReftableEntryUnaligned = 3005,
  kRefblockBeyondEof = 3006,
  kRefblockRefcountNotOne = 3007,
  kRefcountUnreadable = 3008,
  // references and layout (4xxx)
  kRefBeyondEof = 4001,
  kOverlapMetadata = 4002,
  kImageDataAfterEnd = 4003,
  kMetadataLimit = 4004,
  // snapshots (5xxx)
  kSnapshotL1Unaligned = 5001,
  kSnapshotL1TooLarge = 5002,
  kSnapshotExtraDataTooSmall = 5003,
  kSnapshotExtraDataTooLarge = 5004,
  kSnapshotTableTooLarge = 5005,
  kSnapshotDuplicateId = 5006,
  kSnapshotDuplicateName = 5007,
  kSnapshotWithDataFile = 5008,
  kSnapshotEntryTruncated = 5009,
  kSnapshotTableUnaligned = 5010,
  kSnapshotDiskSizeMismatch = 5011,
  // bitmaps (6xxx)
  kBitmapInUse = 6001,
  kBitmapDirectoryInvalid = 6002,
  kBitmapTableEntryInvalid = 6003,
  kBitmapEntryInvalid = 6004,
  kBitmapNameDuplicate = 6005,
  // backing chain and external data file (7xxx)
  kChainBackingMissing = 7001,
  kChainBackingUnreadable = 7002,
  kChainLoop = 7003,
  kChainTooDeep = 7004,
  kChainFormatMismatch = 7005,
  kChainNoBackingFormat = 7006,
  kChainBackingProtocol = 7007,
  kChainBackingNotImage = 7008,
  kChainBackingLarger = 7009,
  kChainBackingUnchecked = 7010,
  kChainBackingCheckFailed = 7011,
  kDataFileMissing = 7101,
  kDataFileUnreadable = 7102,
  kDataFileShort = 7103,
  kDataFileNotImage = 7104,
  kDataFileProtocol = 7105,
  // untrusted input and the host (8xxx)
  kUntrustedBackingFile = 8001,
  kUntrustedDataFile = 8002,
  kImageInUse = 8101,
  kHostSpaceShort = 8102,
  // guest checks (9000-9899): see guestfs/
  kGuestNotRun = 9001,
  kGuestNoOs = 9002,
  kGuestTcgFallback = 9003,
  kFstabRawDevice = 9101,
  kFstabUnresolved = 9102,
  kFstabTypeMismatch = 9103,
  kFstabMountpointMissing = 9104,
  kFstabNoNofail = 9105,
  kFstabNetfsNoNetdev = 9106,
  kFstabDuplicateMountpoint = 9107,
  kFstabSwapMissing = 9108,
  kFstabMalformed = 9109,
  kFstabDeviceAbsent = 9110,
  kGrubNoConfig = 9201,
  kGrubKernelMissing = 9202,
  kGrubInitrdMissing = 9203,
  kGrubRootUnresolved = 9204,
  kGrubLvmLvMissing = 9205,
  kGrubResumeUnresolved = 9206,
  kGrubSearchUnresolved = 9207,
  kGrubCmdlineInconsistent = 9208,
  kGrubDefaultMissing = 9209,
  kLvmVgPartial = 9301,
  kLvmDuplicateVg = 9302,
  kLvmDuplicatePv = 9303,
  kLvmFilterHidesPv = 9304,
  kLvmDevicesFileHidesPv = 9305,
  kInitramfsUnreadable = 9401,
  kInitramfsNoVirtio = 9402,
  kInitramfsNoRootfsDriver = 9403,
  kInitramfsNoBusDriver = 9404,
  kPartMbrSignature = 9501,
  kPartGptHeaderCrc = 9502,
  kPartGptEntriesCrc = 9503,
  kPartGptBackupMisplaced = 9504,
  kPartBeyondDisk = 9505,
  kPartOverlap = 9506,
  kPartNoEsp = 9507,
  kPartNoBiosBoot = 9508,
  kFsDirtyJournal = 9601,
  kFsCorrupt = 9602,
  kFsCheckIncomplete = 9603,
  kHygieneMachineId = 9701,
  kHygieneSshHostKeys = 9702,
  kHygieneCloudInitState = 9703,
  kHygienePersistentNetRules = 9704,
  // policy (99xx)
  kPolicyViolation = 9901,
  // the VM (10001-10999): declared formats, libvirt domains, permissions, firmware; see vm/
  kFormatDeclaredMismatch = 10001,
  kFormatRawHoldsHeader = 10002,
  kVmAssumedDefaults = 10101,
  kVmDiskNotCheckable = 10102,
  kVmDeviceSkipped = 10103,
  kVmIdeOnQ35 = 10104,
  kVmBackingFormatMissing = 10105,
  kVmBackingMismatch = 10106,
  kVmStorageAccessDenied = 10107,
  kVmBackingAccessDenied = 10108,
  kVmOpenDenied = 10109,
  kVmFirmwareFileMissing = 10110,
  kVmAccessUnknown = 10111,
  kVmUefiNoBootloader = 10201,
  kVmBiosNoBootCode = 10202,
};

// Named fields a message template may use: {offset} {cluster} {count} {index} {value}
// {expected} {name} {owner} {other} {detail} {file} {line} {evidence}. Offsets render in hex.
struct Fields {
  std::optional<uint64_t> offset;
  std::optional<uint64_t> cluster;
  uint64_t count = 1;  // clusters (or entries) the finding covers
  uint64_t index = 0;
  uint64_t value = 0;
  uint64_t expected = 0;
  std::string name;
  std::string owner;
  std::string other;
  std::string detail;
  // Guest findings: where, what was seen, and the concrete fix; a rule may lower or raise the
  // table's severity for one finding (e.g. an unresolvable fstab entry with nofail).
  std::string file;
  uint64_t line = 0;
  std::string evidence;
  std::string fix;
  std::string disk;
  std::optional<Severity> severity;
};

struct ProblemDef {
  P code;
  std::string_view slug;
  Severity severity;
  bool check_error;  // the check cannot be trusted to be complete (qemu's check-errors)
  std::string_view message;  // fmt template over Fields
  std::string_view fix;      // what repair does about it
};

std::span<const ProblemDef> ProblemTable();
const ProblemDef& Def(P code);
std::string Render(const ProblemDef& def, const Fields& f);

}  // namespace imgcheck::fsck
