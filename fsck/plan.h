// Repair planning: a typed list of writes, each with the old value it replaces and a sentence
// saying what it does, built without writing anything. The plan is applied to an in-memory
// overlay and re-checked there; a plan whose result would be worse than the image is refused.
// Policy lives in one place (Decide in plan.cc): no pass and no planning step reads the mode.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fsck/report.h"
#include "qcow2/device.h"

namespace imgcheck::fsck {

enum class RepairMode { kLeaks, kAll };

struct RepairOptions {
  RepairMode mode = RepairMode::kAll;
  bool allow_data_loss = false;
  std::optional<std::string> rebase_backing;  // new backing file path
  // The declared format (--format): raw is never repaired (its first bytes are guest data
  // even when they look like a qcow2 header); qcow2 must be qcow2. Without it, a file named
  // like a raw disk (.raw, .img) that probes as qcow2 is refused until the format is declared.
  std::optional<std::string> format;
};

struct PlannedWrite {
  uint64_t offset;
  std::vector<uint8_t> bytes;  // the new bytes
};

struct PlanAction {
  std::string kind;         // refcount, copied, l2-entry, l1-entry, snapshot-table, header, ...
  std::string description;  // "set refcount of cluster 18 (0x120000) from 1 to 0"
  uint64_t offset;
};

struct DataLoss {
  uint64_t guest_offset;
  uint64_t length;
  std::string reason;
};

struct NotRepaired {
  std::string slug;
  std::string message;
  std::string reason;
};

struct Plan {
  std::vector<PlannedWrite> writes;  // in apply order: appended data, in-place, header last
  std::vector<PlanAction> actions;
  std::vector<DataLoss> data_loss;
  std::vector<NotRepaired> not_repaired;
  CheckResult before;    // the check the plan starts from
  CheckResult expected;  // the repaired image, checked in memory
  uint64_t original_size = 0;
  uint64_t final_size = 0;
  std::optional<std::string> refused;  // nothing may be written, and why
};

Plan PlanRepair(const qcow2::Device& dev, const std::string& name, const RepairOptions& opts);

}  // namespace imgcheck::fsck
