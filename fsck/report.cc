#include "fsck/report.h"

namespace imgcheck::fsck {

int CheckResult::ExitCode() const {
  if (failure || check_errors) return 1;
  // Errors found by other checks (the guest, the VM) outrank "this format has no checks".
  if (corruptions) return 2;
  if (leaks) return 3;
  if (!format_has_checks) return 63;
  return 0;
}

void Sink::Report(P code, const Fields& f) {
  const ProblemDef& def = Def(code);
  Severity severity = f.severity.value_or(def.severity);
  if (def.check_error) result_.check_errors++;
  switch (severity) {
    case Severity::kError: result_.corruptions += f.count; break;
    case Severity::kLeak: result_.leaks += f.count; break;
    default: break;
  }
  if (++per_code_[code] > kMaxPerCode) {
    result_.findings_suppressed++;
    return;
  }
  result_.findings.push_back(Finding{code, severity, std::string(def.slug), Render(def, f),
                                     f.disk.empty() ? image_ : f.disk, f.offset, f.cluster,
                                     f.count, f.file, f.line, f.evidence, f.fix});
}

}  // namespace imgcheck::fsck
