// The guest's boot configuration as GRUB would read it: grub.cfg menu entries (linux/linux16/
// linuxefi, initrd*, search --fs-uuid), BLS entries (/loader/entries/*.conf, with $kernelopts
// from grubenv), grubenv and /etc/default/grub. Parsed by us from the raw text.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "guestfs/model.h"

namespace imgcheck::guest {

struct BootEntry {
  std::string title, id;
  std::string file;  // grub.cfg or the BLS entry file (guest path on its filesystem)
  uint64_t line = 0;
  std::string kernel;                // path on `fs`
  std::vector<std::string> initrds;  // paths on `fs`
  std::vector<std::string> args;     // kernel command line, variables expanded
  std::string search_uuid;           // search --fs-uuid inside the entry
  const Filesystem* fs = nullptr;    // where its paths live (null: search names nothing)
};

struct BootConfig {
  const Filesystem* cfg_fs = nullptr;  // the filesystem holding grub.cfg
  std::string cfg_path;                // e.g. /boot/grub2/grub.cfg or /grub2/grub.cfg
  std::string display_path;            // the same as the guest sees it (/boot/grub2/grub.cfg)
  std::string cfg_text;
  std::vector<BootEntry> entries;
  std::map<std::string, std::string> grubenv;
  std::map<std::string, std::string> default_grub;  // /etc/default/grub on the root fs
  std::vector<std::pair<uint64_t, std::string>> unresolved_searches;  // line, uuid
  std::string default_spec;  // saved_entry or `set default=`
  // The entry GRUB boots by default (null when none).
  const BootEntry* Default() const;
};

std::optional<BootConfig> ReadBootConfig(const Guest& g);

}  // namespace imgcheck::guest
