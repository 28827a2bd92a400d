// Applying a repair: the only code that opens an image for writing. In order: open read-write,
// refuse if QEMU (or anyone) holds the image's locks, take those locks ourselves so QEMU cannot
// open it meanwhile, plan, check there is space, write the backup copy (optional) and the undo
// journal and make them durable, write, fsync, re-check. A failed write rolls the image back
// from the journal.
#pragma once

#include <optional>
#include <string>

#include "fsck/plan.h"
#include "fsck/report.h"

namespace imgcheck::fsck {

struct ApplyOptions {
  bool dry_run = false;
  std::string journal_path;          // default: IMAGE.imgcheck-undo
  bool backup_copy = false;          // also a full sparse copy at IMAGE.imgcheck-backup
  bool progress = false;             // a progress line on stderr
};

struct RepairOutcome {
  Plan plan;
  std::optional<std::string> refused;  // nothing was written
  std::optional<std::string> failed;   // writing failed; rolled_back says if it was undone
  bool rolled_back = false;
  std::optional<std::string> journal;  // written journal path
  std::optional<std::string> backup;   // written backup copy path
  std::optional<CheckResult> after;    // the re-check after writing
  int ExitCode() const;
};

RepairOutcome Repair(const std::string& image, const RepairOptions& opts, const ApplyOptions& ao);

}  // namespace imgcheck::fsck
