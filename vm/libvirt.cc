#include "vm/libvirt.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/format.h>

#include <cstdlib>
#include <mutex>

namespace imgcheck::vm {

// The functions used, looked up once; the types come from <libvirt/libvirt.h> (libvirt-dev),
// the code from libvirt.so.0 at run time.
struct Libvirt::Api {
  decltype(&virConnectOpenReadOnly) open_read_only;
  decltype(&virConnectClose) close;
  decltype(&virConnectGetURI) get_uri;
  decltype(&virDomainLookupByName) lookup_domain;
  decltype(&virDomainGetXMLDesc) domain_xml;
  decltype(&virDomainFree) free_domain;
  decltype(&virStoragePoolLookupByName) lookup_pool;
  decltype(&virStorageVolLookupByName) lookup_volume;
  decltype(&virStorageVolGetPath) volume_path;
  decltype(&virStorageVolFree) free_volume;
  decltype(&virStoragePoolFree) free_pool;
  decltype(&virGetLastErrorMessage) last_error;
  decltype(&virSetErrorFunc) set_error_func;
};

namespace {

void Quiet(void*, virErrorPtr) {}  // errors are read with virGetLastErrorMessage, not printed

template <class F>
bool Sym(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

Result<const Libvirt::Api*> LoadApi() {
  static std::once_flag once;
  static Libvirt::Api api;
  static std::string error;
  std::call_once(once, [] {
    void* lib = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = fmt::format("cannot load libvirt ({}): install libvirt0 to use -d/-c", dlerror());
      return;
    }
    bool ok = Sym(lib, "virConnectOpenReadOnly", api.open_read_only) &&
              Sym(lib, "virConnectClose", api.close) &&
              Sym(lib, "virConnectGetURI", api.get_uri) &&
              Sym(lib, "virDomainLookupByName", api.lookup_domain) &&
              Sym(lib, "virDomainGetXMLDesc", api.domain_xml) &&
              Sym(lib, "virDomainFree", api.free_domain) &&
              Sym(lib, "virStoragePoolLookupByName", api.lookup_pool) &&
              Sym(lib, "virStorageVolLookupByName", api.lookup_volume) &&
              Sym(lib, "virStorageVolGetPath", api.volume_path) &&
              Sym(lib, "virStorageVolFree", api.free_volume) &&
              Sym(lib, "virStoragePoolFree", api.free_pool) &&
              Sym(lib, "virGetLastErrorMessage", api.last_error) &&
              Sym(lib, "virSetErrorFunc", api.set_error_func);
    if (!ok) {
      error = fmt::format("libvirt.so.0 lacks a function imgcheck needs ({})", dlerror());
      return;
    }
    api.set_error_func(nullptr, Quiet);
    // libvirt stays loaded: it keeps threads and handlers for the life of the process.
  });
  if (!error.empty()) return Fail(ErrorKind::kUnsupported, error);
  return &api;
}

}  // namespace

Result<std::unique_ptr<Libvirt>> Libvirt::Connect(const std::optional<std::string>& uri) {
  auto api = LoadApi();
  if (!api) return tl::unexpected(api.error());
  virConnectPtr conn = (*api)->open_read_only(uri ? uri->c_str() : nullptr);
  if (!conn) {
    return Fail(ErrorKind::kIo, fmt::format("cannot connect to libvirt{}: {}",
                                            uri ? " at " + *uri : "", (*api)->last_error()));
  }
  std::string name = uri.value_or("");
  if (char* u = (*api)->get_uri(conn)) {
    name = u;
    std::free(u);
  }
  return std::unique_ptr<Libvirt>(new Libvirt(*api, conn, name));
}

Libvirt::~Libvirt() { api_->close(static_cast<virConnectPtr>(conn_)); }

std::string Libvirt::LastError() const { return api_->last_error(); }

Result<std::string> Libvirt::DomainXml(const std::string& name) {
  virDomainPtr dom = api_->lookup_domain(static_cast<virConnectPtr>(conn_), name.c_str());
  if (!dom) return Fail(ErrorKind::kIo, fmt::format("domain '{}' on {}: {}", name, uri_, LastError()));
  char* xml = api_->domain_xml(dom, VIR_DOMAIN_XML_INACTIVE);
  std::string err = xml ? "" : LastError();
  api_->free_domain(dom);
  if (!xml) return Fail(ErrorKind::kIo, fmt::format("domain '{}' on {}: {}", name, uri_, err));
  std::string out = xml;
  std::free(xml);
  return out;
}

Result<std::string> Libvirt::VolumePath(const std::string& pool, const std::string& volume) {
  virStoragePoolPtr p = api_->lookup_pool(static_cast<virConnectPtr>(conn_), pool.c_str());
  if (!p) return Fail(ErrorKind::kIo, fmt::format("storage pool '{}': {}", pool, LastError()));
  virStorageVolPtr v = api_->lookup_volume(p, volume.c_str());
  std::string err = v ? "" : LastError();
  char* path = v ? api_->volume_path(v) : nullptr;
  if (v && !path) err = LastError();
  if (v) api_->free_volume(v);
  api_->free_pool(p);
  if (!path) return Fail(ErrorKind::kIo, fmt::format("volume '{}' of pool '{}': {}", volume, pool, err));
  std::string out = path;
  std::free(path);
  return out;
}

}  // namespace imgcheck::vm
