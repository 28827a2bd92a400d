#include "qcow2/backing.h"

namespace imgcheck::qcow2 {

ClassifiedName ClassifyName(std::string_view name) {
  if (name.starts_with("json:")) return {NameKind::kJson, "json"};
  size_t stop = name.find_first_of(":/");
  if (stop != std::string_view::npos && name[stop] == ':') {
    return {NameKind::kProtocol, std::string(name.substr(0, stop))};
  }
  return {NameKind::kPath, ""};
}

static std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  return path.substr(0, slash + 1);
}

std::string ResolveRelative(const std::string& name, const std::string& referrer) {
  if (name.empty() || name[0] == '/') return name;
  return DirOf(referrer) + name;
}

std::string DescribeResolution(const std::string& name, const std::string& referrer) {
  if (!name.empty() && name[0] == '/') return "absolute path";
  std::string dir = DirOf(referrer);
  return "relative to " + (dir.empty() ? std::string("./") : dir) + " (the directory of " +
         referrer + ")";
}

}  // namespace imgcheck::qcow2
