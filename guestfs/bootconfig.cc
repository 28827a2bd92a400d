#include "guestfs/bootconfig.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

std::string Unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

// "(hd0,msdos1)/vmlinuz" and "($root)/vmlinuz" name a path on the current root device.
std::string StripDevice(const std::string& p) {
  if (!p.empty() && p[0] == '(') {
    size_t close = p.find(')');
    if (close != std::string::npos) return p.substr(close + 1);
  }
  return p;
}

std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = Unquote(line.substr(eq + 1));
  }
  return out;
}

std::vector<std::string> Expand(const std::vector<std::string>& words,
                                const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  for (const std::string& w : words) {
    if (w == "$kernelopts" || w == "${kernelopts}") {
      auto it = env.find("kernelopts");
      if (it != env.end()) {
        for (const std::string& x : SplitWords(it->second)) out.push_back(x);
      }
      continue;
    }
    out.push_back(Unquote(w));
  }
  return out;
}

}  // namespace

const BootEntry* BootConfig::Default() const {
  if (entries.empty()) return nullptr;
  std::string spec = default_spec;
  if (spec.empty() || spec == "${saved_entry}") {
    auto it = grubenv.find("saved_entry");
    spec = it == grubenv.end() ? "0" : it->second;
  }
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), ::isdigit)) {
    size_t i = std::stoul(spec);
    return i < entries.size() ? &entries[i] : nullptr;
  }
  std::string last = spec.substr(spec.rfind('>') == std::string::npos ? 0 : spec.rfind('>') + 1);
  for (const BootEntry& e : entries) {
    if (e.title == spec || e.id == spec || e.title == last || e.id == last) return &e;
  }
  return nullptr;
}

std::optional<BootConfig> ReadBootConfig(const Guest& g) {
  BootConfig bc;
  const Filesystem* root = g.RootFs();
  // grub.cfg: on the root filesystem under /boot, or at the top of a separate /boot.
  std::vector<std::pair<const Filesystem*, std::string>> candidates;
  if (root) {
    candidates.push_back({root, "/boot/grub2/grub.cfg"});
    candidates.push_back({root, "/boot/grub/grub.cfg"});
  }
  for (const Filesystem& f : g.filesystems) {
    if (&f == root || f.mount.empty()) continue;
    candidates.push_back({&f, "/grub2/grub.cfg"});
    candidates.push_back({&f, "/grub/grub.cfg"});
  }
  for (const auto& [fs, path] : candidates) {
    if (auto text = g.Read(fs->device, path)) {
      bc.cfg_fs = fs;
      bc.cfg_path = path;
      bc.display_path = path;
      bc.cfg_text = *text;
      break;
    }
  }
  if (root) {
    if (auto d = g.Read(root->device, "/etc/default/grub")) bc.default_grub = KeyValues(*d);
  }
  if (!bc.cfg_fs) return std::nullopt;
  std::string dir = bc.cfg_path.substr(0, bc.cfg_path.rfind('/'));
  if (auto env = g.Read(bc.cfg_fs->device, dir + "/grubenv")) bc.grubenv = KeyValues(*env);

  std::string global_uuid;
  bool bls = false;
  std::istringstream in(bc.cfg_text);
  uint64_t n = 0;
  int depth = 0;
  std::optional<BootEntry> cur;
  int entry_depth = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::vector<std::string> w = SplitWords(line.substr(0, line.find('#') == 0 ? 0 : line.size()));
    if (w.empty() || w[0][0] == '#') continue;
    const std::string& cmd = w[0];
    if (cmd == "menuentry") {
      cur = BootEntry{};
      cur->file = bc.cfg_path;
      cur->line = n;
      if (w.size() > 1) {
        // The title may hold spaces: take the first quoted string of the line.
        size_t q = line.find_first_of("'\"");
        size_t e = q == std::string::npos ? q : line.find(line[q], q + 1);
        cur->title = q == std::string::npos ? w[1] : line.substr(q + 1, e - q - 1);
      }
      for (size_t i = 1; i + 1 < w.size(); ++i) {
        if (w[i] == "$menuentry_id_option" || w[i] == "--id") cur->id = Unquote(w[i + 1]);
      }
      entry_depth = depth;
    } else if (cmd == "search" && std::find(w.begin(), w.end(), "--fs-uuid") != w.end()) {
      std::string uuid = Unquote(w.back());
      (cur ? cur->search_uuid : global_uuid) = uuid;
      if (!g.Resolve("UUID=" + uuid)) bc.unresolved_searches.push_back({n, uuid});
    } else if (cur && (cmd == "linux" || cmd == "linux16" || cmd == "linuxefi") && w.size() > 1) {
      cur->kernel = StripDevice(w[1]);
      cur->args = Expand(std::vector<std::string>(w.begin() + 2, w.end()), bc.grubenv);
    } else if (cur && (cmd == "initrd" || cmd == "initrd16" || cmd == "initrdefi")) {
      for (size_t i = 1; i < w.size(); ++i) cur->initrds.push_back(StripDevice(w[i]));
    } else if (cmd == "set" && w.size() > 1 && w[1].starts_with("default=")) {
      bc.default_spec = Unquote(w[1].substr(8));
    } else if (cmd == "blscfg") {
      bls = true;
    }
    depth += static_cast<int>(std::count(line.begin(), line.end(), '{'));
    depth -= static_cast<int>(std::count(line.begin(), line.end(), '}'));
    if (cur && depth <= entry_depth && line.find('}') != std::string::npos) {
      bc.entries.push_back(*cur);
      cur.reset();
    }
  }
  if (bls) {
    std::string entries_dir = bc.cfg_path.starts_with("/boot/") ? "/boot/loader/entries"
                                                                : "/loader/entries";
    std::vector<std::string> files = g.List(bc.cfg_fs->device, entries_dir);
    std::sort(files.rbegin(), files.rend());  // newest version first, as GRUB sorts them
    for (const std::string& f : files) {
      if (!f.ends_with(".conf")) continue;
      std::string path = entries_dir + "/" + f;
      auto text = g.Read(bc.cfg_fs->device, path);
      if (!text) continue;
      BootEntry e;
      e.file = path;
      e.line = 1;
      e.id = f.substr(0, f.size() - 5);
      std::istringstream es(*text);
      for (std::string line; std::getline(es, line);) {
        std::vector<std::string> w = SplitWords(line);
        if (w.empty()) continue;
        std::vector<std::string> rest(w.begin() + 1, w.end());
        if (w[0] == "title") e.title = line.substr(line.find("title") + 6);
        if (w[0] == "linux" && !rest.empty()) e.kernel = rest[0];
        if (w[0] == "initrd") e.initrds.insert(e.initrds.end(), rest.begin(), rest.end());
        if (w[0] == "options") e.args = Expand(rest, bc.grubenv);
      }
      bc.entries.push_back(e);
    }
  }
  // A failed search leaves $root where GRUB found its configuration.
  for (BootEntry& e : bc.entries) {
    std::string uuid = e.search_uuid.empty() ? global_uuid : e.search_uuid;
    const Filesystem* found = uuid.empty() ? nullptr : g.Resolve("UUID=" + uuid);
    e.fs = found ? found : bc.cfg_fs;
    if (bc.cfg_fs != root) e.file = "/boot" + e.file;  // a separate /boot, as the guest sees it
  }
  if (bc.cfg_fs != root) bc.display_path = "/boot" + bc.cfg_path;
  return bc;
}

}  // namespace imgcheck::guest
