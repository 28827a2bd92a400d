// Rendering check results: human text for people, JSON for machines.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "fsck/info.h"
#include "fsck/report.h"

namespace imgcheck::cli {

struct TextOptions {
  bool color = false;
  bool quiet = false;
  bool verbose = false;
};

void PrintText(std::FILE* out, const fsck::CheckResult& r, const TextOptions& opts);
nlohmann::ordered_json ToJson(const fsck::CheckResult& r);

void PrintInfoText(std::FILE* out, const fsck::ImageInfo& info);
nlohmann::ordered_json InfoToJson(const fsck::ImageInfo& info);

}  // namespace imgcheck::cli
