// Pass 0: the header. Reports what qemu-img check ignores (corrupt and dirty bits, unknown
// compatible and autoclear bits) and what makes QEMU refuse to open the image. Returns false when
// the rest of the check cannot run on this header.
#include <fmt/format.h>

#include "fsck/context.h"
#include "qcow2/layout.h"

namespace imgcheck::fsck {

using namespace qcow2;
using Kind = HeaderIssue::Kind;

bool Pass0Header(const Header& h, CheckResult& result, Sink& sink) {
  bool can_continue = true;
  for (const HeaderIssue& i : h.issues) {
    switch (i.kind) {
      case Kind::kUnsupported:
        // We cannot read the image at all: exit 1, one line on stderr, and the finding.
        sink.Report(P::kHeaderUnknownIncompatible, Fields{.offset = 72, .detail = i.message});
        result.failure = i.message;
        return false;
      case Kind::kInvalidField:
        sink.Report(P::kHeaderInvalidField, Fields{.detail = i.message});
        can_continue = false;
        break;
      case Kind::kExtensionInvalid:
        sink.Report(P::kHeaderExtensionInvalid, Fields{.detail = i.message});
        can_continue = false;
        break;
      case Kind::kExtensionUnknown:
        sink.Report(P::kHeaderExtensionUnknown, Fields{.detail = i.message});
        break;
      case Kind::kExtensionDuplicate:
        sink.Report(P::kHeaderExtensionDuplicate, Fields{.detail = i.message});
        break;
      case Kind::kBitmapsIgnored:
        sink.Report(P::kHeaderBitmapsAutoclearClear, Fields{.detail = i.message});
        break;
      case Kind::kBitmapsBitWithoutExt:
        sink.Report(P::kHeaderBitmapsBitWithoutExt, Fields{.detail = i.message});
        break;
      case Kind::kOddField:
        sink.Report(P::kHeaderOddField, Fields{.detail = i.message});
        break;
    }
  }
  if (h.incompatible_features & kIncompatCorrupt) {
    sink.Report(P::kHeaderCorruptBit, Fields{.offset = 72});
  }
  if (h.incompatible_features & kIncompatDirty) {
    bool lazy = h.compatible_features & kCompatLazyRefcounts;
    sink.Report(P::kHeaderDirtyBit,
                    Fields{.offset = 72, .detail = lazy ? " (lazy refcounts: the image was not "
                                                          "closed cleanly)"
                                                        : " without lazy refcounts enabled"});
  }
  for (uint8_t bit = 0; bit < 64; ++bit) {
    if ((h.compatible_features & ~kCompatKnown) & (1ull << bit)) {
      sink.Report(P::kHeaderUnknownCompatible,
                      Fields{.offset = 80, .index = bit, .name = h.FeatureBitName(1, bit)});
    }
    if ((h.autoclear_features & ~kAutoclearKnown) & (1ull << bit)) {
      sink.Report(P::kHeaderUnknownAutoclear,
                      Fields{.offset = 88, .index = bit, .name = h.FeatureBitName(2, bit)});
    }
  }
  if (h.crypt_method == kCryptAes) sink.Report(P::kHeaderLegacyEncryption, Fields{});
  if (h.data_file && !h.has_data_file()) {
    sink.Report(P::kHeaderDataFileNameWithoutBit, Fields{.name = *h.data_file});
  }
  return can_continue;
}

}  // namespace imgcheck::fsck
