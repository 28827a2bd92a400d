// `imgcheck repair` and `imgcheck undo`: option handling and output (human and JSON).
#include "cli/repair_cmd.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "fsck/host.h"
#include "fsck/undo.h"

namespace imgcheck::cli {
namespace {

nlohmann::ordered_json Counters(const fsck::CheckResult& r) {
  return {{"corruptions", r.corruptions}, {"leaks", r.leaks},
          {"check-errors", r.check_errors + (r.failure ? 1 : 0)}};
}

std::string Summary(const fsck::CheckResult& r) {
  if (r.failure) return "check could not complete: " + *r.failure;
  if (!r.corruptions && !r.leaks && !r.check_errors) return "no errors";
  return fmt::format("{} error(s), {} leaked cluster(s){}", r.corruptions, r.leaks,
                     r.check_errors ? fmt::format(", {} check error(s)", r.check_errors) : "");
}

}  // namespace

int RunRepair(const std::string& image, const fsck::RepairOptions& ro, const fsck::ApplyOptions& ao,
              bool json) {
  fsck::RepairOutcome o = fsck::Repair(image, ro, ao);
  const fsck::Plan& p = o.plan;
  int code = o.ExitCode();
  if (o.refused) fmt::print(stderr, "imgcheck: {}: {}\n", image, *o.refused);
  if (o.failed) fmt::print(stderr, "imgcheck: {}: repair failed: {}\n", image, *o.failed);
  if (json) {
    nlohmann::ordered_json j;
    j["filename"] = image;
    j["mode"] = ro.mode == fsck::RepairMode::kAll ? "all" : "leaks";
    j["dry-run"] = ao.dry_run;
    j["journal"] = o.journal ? nlohmann::ordered_json(*o.journal) : nullptr;
    j["backup"] = o.backup ? nlohmann::ordered_json(*o.backup) : nullptr;
    if (o.refused) j["refused"] = *o.refused;
    if (o.failed) {
      j["failed"] = *o.failed;
      j["rolled-back"] = o.rolled_back;
    }
    nlohmann::ordered_json actions = nlohmann::ordered_json::array();
    for (const auto& a : p.actions) {
      actions.push_back({{"kind", a.kind}, {"description", a.description}, {"offset", a.offset}});
    }
    j["actions"] = actions;
    nlohmann::ordered_json loss = nlohmann::ordered_json::array();
    for (const auto& d : p.data_loss) {
      loss.push_back({{"guest-offset", d.guest_offset}, {"length", d.length}, {"reason", d.reason}});
    }
    j["data-loss"] = loss;
    nlohmann::ordered_json left = nlohmann::ordered_json::array();
    for (const auto& n : p.not_repaired) {
      left.push_back({{"slug", n.slug}, {"message", n.message}, {"reason", n.reason}});
    }
    j["not-repaired"] = left;
    j["before"] = Counters(p.before);
    if (!ao.dry_run) j["after"] = Counters(o.after ? *o.after : p.before);  // nothing written
    if (ao.dry_run && !o.refused) j["expected"] = Counters(p.expected);
    j["exit-code"] = code;
    fmt::print("{}\n", j.dump(2));
    return code;
  }
  fmt::print("{}: {}repair ({}): before: {}\n", image, ao.dry_run ? "dry-run " : "",
             ro.mode == fsck::RepairMode::kAll ? "all" : "leaks only", Summary(p.before));
  if (o.refused) {
    fmt::print("  refused: {}\n", *o.refused);
    return code;
  }
  if (p.actions.empty()) fmt::print("  nothing to repair\n");
  for (const auto& a : p.actions) {
    fmt::print("  {}{}\n", ao.dry_run ? "would " : "", a.description);
  }
  for (const auto& d : p.data_loss) {
    fmt::print("  data loss: guest bytes 0x{:x}..0x{:x}: {}\n", d.guest_offset,
               d.guest_offset + d.length, d.reason);
  }
  if (o.backup) fmt::print("  backup copy: {}\n", *o.backup);
  if (o.journal) {
    fmt::print("  journal: {}\n  (to restore the original: imgcheck undo {})\n", *o.journal,
               *o.journal);
  }
  if (o.failed) {
    fmt::print("  failed: {}{}\n", *o.failed, o.rolled_back ? " (rolled back)" : "");
  }
  if (o.after) fmt::print("  after: {}\n", Summary(*o.after));
  if (ao.dry_run && !p.writes.empty()) fmt::print("  expected after: {}\n", Summary(p.expected));
  for (const auto& n : p.not_repaired) {
    fmt::print("  not repaired: [{}] {}: {}\n", n.slug, n.message, n.reason);
  }
  return code;
}

int RunUndo(const std::string& journal_path, const std::string& image_arg, bool dry_run,
            bool json) {
  auto fail = [&](const std::string& why) {
    fmt::print(stderr, "imgcheck: undo: {}\n", why);
    if (json) fmt::print("{}\n", nlohmann::ordered_json{{"journal", journal_path}, {"error", why},
                                                        {"exit-code", 1}}.dump(2));
    return 1;
  };
  auto j = fsck::ReadJournal(journal_path);
  if (!j) return fail(j.error().message);
  std::string image = image_arg.empty() ? j->image_path : image_arg;
  int fd = ::open(image.c_str(), (dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return fail(fmt::format("cannot open {}: {}", image, std::strerror(errno)));
  if (auto locks = fsck::ProbeQemuLocks(fd)) {
    ::close(fd);
    return fail(fmt::format("{} is in use ({}): refusing to write to a live image", image, *locks));
  }
  auto r = fsck::Undo(fd, *j, dry_run);
  ::close(fd);
  if (!r) return fail(image + ": " + r.error().message);
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"journal", journal_path}, {"image", image},
                                              {"dry-run", dry_run}, {"regions", r->regions},
                                              {"bytes", r->bytes},
                                              {"original-size", j->original_size},
                                              {"exit-code", 0}}.dump(2));
  } else {
    fmt::print("{}: {} {} region(s), {} bytes, and the original length {}{}\n", image,
               dry_run ? "would restore" : "restored", r->regions, r->bytes, j->original_size,
               r->already_original == r->regions ? " (the repair had not changed it yet)" : "");
  }
  return 0;
}

}  // namespace imgcheck::cli
