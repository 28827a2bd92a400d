#pragma once

#include <string>

#include "fsck/apply.h"

namespace imgcheck::cli {

int RunRepair(const std::string& image, const fsck::RepairOptions& ro, const fsck::ApplyOptions& ao,
              bool json);
int RunUndo(const std::string& journal, const std::string& image, bool dry_run, bool json);

}  // namespace imgcheck::cli
