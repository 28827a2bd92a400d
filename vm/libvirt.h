// Talking to libvirt, read-only, without linking it: libvirt.so.0 is loaded with dlopen only
// when a command names a domain (-d) or a connection (-c), so `--version`, info, repair and
// checks without a domain never load libvirt (nor the gnutls and curl it pulls in). Only a few
// functions are used: open a read-only connection, look a domain up by name and read its
// inactive XML, resolve a storage volume to its path. Nothing is defined, started or changed.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "qcow2/result.h"

namespace imgcheck::vm {

class Libvirt {
 public:
  // Loads libvirt and opens a read-only connection to `uri` (libvirt's default when nullopt).
  static Result<std::unique_ptr<Libvirt>> Connect(const std::optional<std::string>& uri);
  ~Libvirt();
  Libvirt(const Libvirt&) = delete;
  Libvirt& operator=(const Libvirt&) = delete;

  // The inactive XML of the named domain (VIR_DOMAIN_XML_INACTIVE): the definition libvirt
  // would start, not the state of a running VM.
  Result<std::string> DomainXml(const std::string& name);
  // The path of a storage volume (<disk type='volume'>).
  Result<std::string> VolumePath(const std::string& pool, const std::string& volume);
  const std::string& uri() const { return uri_; }

  struct Api;  // the functions looked up in libvirt.so.0

 private:
  Libvirt(const Api* api, void* conn, std::string uri) : api_(api), conn_(conn), uri_(std::move(uri)) {}
  std::string LastError() const;
  const Api* api_;
  void* conn_;
  std::string uri_;
};

}  // namespace imgcheck::vm
