#include "fsck/report.h"

namespace imgcheck::fsck {

int CheckResult::ExitCode() const {
  if (failure || check_errors) return 1;
  if (!format_has_checks) return 63;
  if (corruptions) return 2;
  if (leaks) return 3;
  return 0;
}

void Sink::Report(P code, const Fields& f) {
  const ProblemDef& def = Def(code);
  if (def.check_error) result_.check_errors++;
  switch (def.severity) {
    case Severity::kError: result_.corruptions += f.count; break;
    case Severity::kLeak: result_.leaks += f.count; break;
    default: break;
  }
  if (++per_code_[code] > kMaxPerCode) {
    result_.findings_suppressed++;
    return;
  }
  result_.findings.push_back(Finding{code, def.severity, std::string(def.slug), Render(def, f),
                                     image_, f.offset, f.cluster, f.count});
}

}  // namespace imgcheck::fsck
