// Rendering check results: human text for people, JSON for machines.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "fsck/report.h"

namespace imgcheck::cli {

struct TextOptions {
  bool color = false;
  bool quiet = false;
  bool verbose = false;
};

void PrintText(std::FILE* out, const fsck::CheckResult& r, const TextOptions& opts);
nlohmann::ordered_json ToJson(const fsck::CheckResult& r);

}  // namespace imgcheck::cli
