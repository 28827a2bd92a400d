// The VM model from libvirt domains (vm/domain.h), guest names, the qemu user's access
// (vm/access.h) and UEFI NVRAM boot entries (vm/nvram.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/endian/conversion.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "vm/access.h"
#include "vm/domain.h"
#include "vm/nvram.h"
#include "vm/resolve.h"

namespace imgcheck::vm {
namespace {

Machine Parse(const std::string& xml) {
  auto m = ParseDomainXml(xml, "test.xml");
  EXPECT_TRUE(m) << (m ? "" : m.error().message);
  return m ? *m : Machine{};
}

std::string Domain(const std::string& devices, const std::string& os = "<type>hvm</type>") {
  return "<domain type='kvm'><name>web1</name><os>" + os + "</os><devices>" + devices +
         "</devices></domain>";
}

std::string FileDisk(const std::string& path, const std::string& dev, const std::string& bus,
                     const std::string& extra = "", const std::string& type = "qcow2") {
  return "<disk type='file' device='disk'><driver name='qemu' type='" + type + "'/><source file='" +
         path + "'/><target dev='" + dev + "' bus='" + bus + "'/>" + extra + "</disk>";
}

TEST(Domain, DisksBusesAndGuestNames) {
  Machine m = Parse(Domain(FileDisk("/v/a.qcow2", "vda", "virtio") +
                           FileDisk("/v/b.qcow2", "sda", "sata") +
                           FileDisk("/v/c.qcow2", "sdb", "scsi") +
                           "<controller type='scsi' index='0' model='virtio-scsi'/>" +
                           "<disk type='file' device='cdrom'><source file='/i.iso'/>"
                           "<target dev='sdc' bus='sata'/></disk>"));
  EXPECT_EQ(m.domain, "web1");
  EXPECT_FALSE(m.assumed);
  ASSERT_EQ(m.disks.size(), 3u);
  EXPECT_EQ(m.disks[0].guest_name, "vda");
  EXPECT_EQ(m.disks[1].bus, Bus::kSata);
  EXPECT_EQ(m.disks[1].guest_name, "sda");
  EXPECT_EQ(m.disks[2].bus, Bus::kVirtioScsi);
  EXPECT_EQ(m.disks[2].controller_model, "virtio-scsi");
  EXPECT_EQ(m.disks[2].guest_name, "sdb");
  ASSERT_EQ(m.skipped.size(), 1u);  // the cdrom
  EXPECT_EQ(m.skipped[0].target, "sdc");
}

TEST(Domain, TargetDevIsNotTheGuestName) {
  // A SATA disk declared as "vda" is still sda in the guest; a virtio disk "hdb" is vda.
  Machine m = Parse(Domain(FileDisk("/v/a", "hdb", "virtio") + FileDisk("/v/b", "vda", "sata")));
  EXPECT_EQ(m.disks[0].guest_name, "vda");
  EXPECT_EQ(m.disks[1].guest_name, "sda");
}

TEST(Domain, LibvirtOrdersDisksOfABusByTarget) {
  // virDomainDiskInsert: sdb declared before sda is enumerated after it.
  Machine m = Parse(Domain(FileDisk("/v/second", "sdb", "sata") + FileDisk("/v/first", "sda", "sata")));
  EXPECT_EQ(m.disks[0].path, "/v/first");
  EXPECT_EQ(m.disks[0].guest_name, "sda");
  EXPECT_EQ(m.disks[1].path, "/v/second");
  EXPECT_EQ(m.disks[1].guest_name, "sdb");
}

TEST(Domain, ExplicitPciAddressesOrderVirtioDisks) {
  auto pci = [](int bus) {
    return "<address type='pci' domain='0x0000' bus='0x0" + std::to_string(bus) +
           "' slot='0x00' function='0x0'/>";
  };
  Machine m = Parse(Domain(FileDisk("/v/a", "vda", "virtio", pci(5)) +
                           FileDisk("/v/b", "vdb", "virtio", pci(4))));
  EXPECT_EQ(m.disks[0].path, "/v/b");
  EXPECT_EQ(m.disks[0].guest_name, "vda");
}

TEST(Domain, FirmwareMachineAndSeclabel) {
  Machine m = Parse(
      "<domain type='kvm'><name>u</name><os firmware='efi'><type machine='pc-q35-7.2'>hvm</type>"
      "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>"
      "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/u_VARS.fd"
      "</nvram><boot dev='hd'/></os><devices>" +
      FileDisk("/v/a", "vda", "virtio", "<boot order='2'/>") +
      FileDisk("/v/b", "vdb", "virtio", "<boot order='1'/><readonly/>") +
      "</devices><seclabel type='static' model='dac' relabel='no'><label>+107:+107</label>"
      "</seclabel></domain>");
  EXPECT_EQ(m.firmware, Firmware::kUefi);
  EXPECT_TRUE(m.secure_boot);
  EXPECT_TRUE(m.q35());
  EXPECT_EQ(m.nvram, "/var/lib/libvirt/qemu/nvram/u_VARS.fd");
  EXPECT_EQ(m.dac_label, "+107:+107");
  EXPECT_FALSE(m.relabel);
  EXPECT_EQ(m.BootDisk()->path, "/v/b");
  EXPECT_TRUE(m.disks[1].readonly);
}

TEST(Domain, FormatsBackingStoreAndOtherSources) {
  Machine m = Parse(Domain(
      "<disk type='file' device='disk'><source file='/v/ov'/><target dev='vda' bus='virtio'/>"
      "<backingStore type='file'><format type='qcow2'/><source file='/v/base'/><backingStore/>"
      "</backingStore></disk>"
      "<disk type='network' device='disk'><driver type='raw'/><source protocol='rbd' "
      "name='pool/img'><host name='mon1'/></source><target dev='vdb' bus='virtio'/></disk>"
      "<disk type='volume' device='disk'><driver type='qcow2'/><source pool='default' "
      "volume='x.qcow2'/><target dev='vdc' bus='virtio'/></disk>"));
  ASSERT_EQ(m.disks.size(), 3u);
  EXPECT_EQ(m.disks[0].format, "raw");  // no <driver type>: libvirt never probes
  EXPECT_TRUE(m.disks[0].format_implied);
  EXPECT_TRUE(m.disks[0].backing_declared);
  ASSERT_EQ(m.disks[0].backing.size(), 1u);
  EXPECT_EQ(m.disks[0].backing[0].path, "/v/base");
  EXPECT_EQ(m.disks[0].backing[0].format, "qcow2");
  EXPECT_EQ(m.disks[1].source, Source::kNetwork);
  EXPECT_EQ(m.disks[1].source_text, "rbd://mon1/pool/img");
  EXPECT_EQ(m.disks[1].guest_name, "vdb");  // still takes its name
  EXPECT_EQ(m.disks[2].source, Source::kVolume);
  EXPECT_EQ(m.disks[2].pool, "default");
}

TEST(Domain, ScsiWithoutControllerModelIsLsiLogic) {
  Machine m = Parse(Domain(FileDisk("/v/a", "sda", "scsi")));
  EXPECT_EQ(m.disks[0].bus, Bus::kScsi);
  EXPECT_EQ(m.disks[0].controller_model, "lsilogic");
}

TEST(Domain, NvmeNamespacesAndControllers) {
  auto ns = [](int c, int u) {
    return "<address type='drive' controller='" + std::to_string(c) + "' bus='0' target='0' unit='" +
           std::to_string(u) + "'/>";
  };
  Machine m = Parse(Domain(FileDisk("/v/a", "nvme0n1", "nvme", ns(0, 0)) +
                           FileDisk("/v/b", "nvme0n2", "nvme", ns(0, 1)) +
                           FileDisk("/v/c", "nvme1n1", "nvme", ns(1, 0))));
  EXPECT_EQ(m.disks[0].guest_name, "nvme0n1");
  EXPECT_EQ(m.disks[1].guest_name, "nvme0n2");
  EXPECT_EQ(m.disks[2].guest_name, "nvme1n1");
  EXPECT_EQ(PartitionName("nvme0n1", 2), "nvme0n1p2");
  EXPECT_EQ(PartitionName("vda", 2), "vda2");
}

TEST(Domain, HostileOrBrokenXmlIsOneLineError) {
  const std::string laughs =
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 "
      "'&lol;&lol;&lol;&lol;'>]><domain><name>&lol2;</name></domain>";
  for (const std::string& bad :
       {laughs, std::string("<domain><name>x</name>"), std::string("<network/>"),
        std::string("<domain/>"), std::string(""), std::string(kMaxDomainXml + 1, ' ')}) {
    auto m = ParseDomainXml(bad, "bad.xml");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << m.error().message;
    EXPECT_TRUE(m.error().message.starts_with("bad.xml")) << m.error().message;
  }
  EXPECT_NE(ParseDomainXml(laughs, "x").error().message.find("DOCTYPE"), std::string::npos);
}

TEST(Resolve, ContradictionsAreRefused) {
  EXPECT_FALSE(ResolveMachine({.images = {"a"}, .domain_xml = "d.xml"}));
  EXPECT_FALSE(ResolveMachine({.format = "raw", .domain_xml = "d.xml"}));
  EXPECT_FALSE(ResolveMachine({.images = {"a"}, .connect = "test:///default"}));
  auto m = ResolveMachine({.images = {"a", "b"}, .format = "raw", .bus = Bus::kSata});
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->assumed);
  EXPECT_EQ(m->disks[1].guest_name, "sdb");
  EXPECT_EQ(m->disks[1].format, "raw");
  auto n = ResolveMachine({.images = {"a", "b"}, .bus = Bus::kNvme});
  EXPECT_EQ(n->disks[1].guest_name, "nvme1n1");
}

TEST(QemuConf, UserGroupAndOwnership) {
  QemuConf c = ParseQemuConf("# comment\nuser = \"qemu\"\n#group = \"x\"\ngroup=\"kvm\" # why\n"
                             "dynamic_ownership = 0\n");
  EXPECT_EQ(c.user, "qemu");
  EXPECT_EQ(c.group, "kvm");
  EXPECT_FALSE(c.dynamic_ownership);
  EXPECT_TRUE(ParseQemuConf("").dynamic_ownership);
}

TEST(Access, PermitsFollowsTheKernel) {
  Identity id{.uid = 1000, .gid = 1000, .groups = {1000, 107}};
  EXPECT_TRUE(Permits({.mode = 0750, .uid = 0, .gid = 107}, id, 1));   // supplementary group
  EXPECT_FALSE(Permits({.mode = 0750, .uid = 0, .gid = 108}, id, 1));
  EXPECT_TRUE(Permits({.mode = 0701, .uid = 0, .gid = 0}, id, 1));
  EXPECT_FALSE(Permits({.mode = 0077, .uid = 1000, .gid = 1000}, id, 1));  // owner bits decide
  EXPECT_TRUE(Permits({.mode = 0640, .uid = 0, .gid = 107}, id, 4));
  EXPECT_FALSE(Permits({.mode = 0640, .uid = 0, .gid = 107}, id, 6));
  // ACL: a named user entry, limited by the mask.
  Inode acl{.mode = 0770, .uid = 0, .gid = 0,
            .acl = std::vector<AclEntry>{{kAclUserObj, 7, 0}, {kAclUser, 5, 1000},
                                         {kAclGroupObj, 7, 0}, {kAclMask, 5, 0}, {kAclOther, 0, 0}}};
  EXPECT_TRUE(Permits(acl, id, 1));
  EXPECT_FALSE(Permits(acl, id, 2));
  acl.acl->at(3).perm = 4;  // mask r--: the named user loses x
  EXPECT_FALSE(Permits(acl, id, 1));
  // A named group entry matching a supplementary group.
  Inode g{.mode = 0750, .uid = 0, .gid = 0,
          .acl = std::vector<AclEntry>{{kAclUserObj, 7, 0}, {kAclGroupObj, 0, 0}, {kAclGroup, 1, 107},
                                       {kAclMask, 1, 0}, {kAclOther, 0, 0}}};
  EXPECT_TRUE(Permits(g, id, 1));
  EXPECT_TRUE(Permits({.mode = 0, .uid = 5, .gid = 5}, Identity{.uid = 0}, 6));  // root
}

TEST(Access, AclXattrDecoding) {
  std::vector<uint8_t> x(4 + 8 * 2);
  boost::endian::store_little_u32(x.data(), 2);
  boost::endian::store_little_u16(x.data() + 4, kAclUser);
  boost::endian::store_little_u16(x.data() + 6, 5);
  boost::endian::store_little_u32(x.data() + 8, 64055);
  auto acl = ParseAcl(x);
  ASSERT_TRUE(acl);
  EXPECT_EQ((*acl)[0].id, 64055u);
  EXPECT_EQ((*acl)[0].perm, 5);
  EXPECT_FALSE(ParseAcl(std::span<const uint8_t>(x).first(7)));
  x[0] = 1;
  EXPECT_FALSE(ParseAcl(x));
}

TEST(Access, CheckReachNamesTheDirectory) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to set owners";
  namespace fs = std::filesystem;
  fs::path base = fs::temp_directory_path() / ("imgcheck-access-" + std::to_string(::getpid()));
  fs::create_directories(base / "closed" / "inner");
  fs::create_directories(base / "group");
  ::chmod(base.c_str(), 0755);
  ::chmod((base / "closed").c_str(), 0700);
  ::chmod((base / "closed" / "inner").c_str(), 0755);
  ::chown((base / "group").c_str(), 0, 4343);
  ::chmod((base / "group").c_str(), 0750);
  std::ofstream((base / "closed" / "inner" / "d.qcow2").string()) << "x";
  std::ofstream((base / "group" / "d.qcow2").string()) << "x";
  ::chmod((base / "group" / "d.qcow2").c_str(), 0600);
  fs::create_directory_symlink(base / "closed" / "inner", base / "link");
  Identity id{.uid = 4242, .gid = 4242, .groups = {4242, 4343}};
  auto r = CheckReach((base / "closed" / "inner" / "d.qcow2").string(), id, 0);
  ASSERT_TRUE(r);
  ASSERT_TRUE(*r);
  EXPECT_EQ((*r)->component, (base / "closed").string());
  auto via_link = CheckReach((base / "link" / "d.qcow2").string(), id, 0);  // followed
  ASSERT_TRUE(via_link && *via_link);
  EXPECT_EQ((*via_link)->component, (base / "closed").string());
  auto grp = CheckReach((base / "group" / "d.qcow2").string(), id, 0);
  ASSERT_TRUE(grp);
  EXPECT_FALSE(*grp);  // reached through the supplementary group
  auto file = CheckReach((base / "group" / "d.qcow2").string(), id, 4);
  ASSERT_TRUE(file && *file);
  EXPECT_TRUE((*file)->file);
  // An ACL granting search to the user opens the closed directory.
  std::vector<uint8_t> x(4 + 8 * 5);
  boost::endian::store_little_u32(x.data(), 2);
  uint16_t entries[5][2] = {{kAclUserObj, 7}, {kAclUser, 1}, {kAclGroupObj, 0}, {kAclMask, 1},
                            {kAclOther, 0}};
  for (int i = 0; i < 5; ++i) {
    boost::endian::store_little_u16(x.data() + 4 + 8 * i, entries[i][0]);
    boost::endian::store_little_u16(x.data() + 6 + 8 * i, entries[i][1]);
    boost::endian::store_little_u32(x.data() + 8 + 8 * i, entries[i][0] == kAclUser ? 4242 : 0);
  }
  if (::setxattr((base / "closed").c_str(), "system.posix_acl_access", x.data(), x.size(), 0) == 0) {
    auto acl = CheckReach((base / "closed" / "inner" / "d.qcow2").string(), id, 0);
    ASSERT_TRUE(acl);
    EXPECT_FALSE(*acl);
  }
  fs::remove_all(base);
}

// An OVMF variable store with one Boot0001 entry: HD(GPT partition) + File(\EFI\debian\x.efi).
std::vector<uint8_t> Nvram() {
  using boost::endian::store_little_u16;
  using boost::endian::store_little_u32;
  std::vector<uint8_t> b(4096, 0xff);
  std::fill(b.begin(), b.begin() + 72 + 28, 0);
  std::memcpy(&b[40], "_FVH", 4);
  store_little_u16(&b[48], 72);
  const uint8_t auth[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                            0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};
  std::memcpy(&b[72], auth, 16);
  store_little_u32(&b[72 + 16], 4096 - 72);
  std::vector<uint8_t> data;
  auto u16 = [&](uint16_t v) { data.push_back(uint8_t(v)); data.push_back(uint8_t(v >> 8)); };
  auto u32 = [&](uint32_t v) { u16(uint16_t(v)); u16(uint16_t(v >> 16)); };
  auto wstr = [&](const std::string& s) { for (char c : s) u16(uint16_t(c)); u16(0); };
  u32(1);  // active
  std::vector<uint8_t> path;
  path = {4, 1, 42, 0};
  path.resize(42, 0);
  const uint8_t part[16] = {0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
                            0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  std::memcpy(&path[24], part, 16);
  path[40] = 2;  // MBRType GPT
  path[41] = 2;  // SignatureType GUID
  std::string file = "\\EFI\\debian\\x.efi";
  path.push_back(4);
  path.push_back(4);
  uint16_t flen = static_cast<uint16_t>(4 + 2 * (file.size() + 1));
  path.push_back(uint8_t(flen));
  path.push_back(uint8_t(flen >> 8));
  for (char c : file) { path.push_back(uint8_t(c)); path.push_back(0); }
  path.push_back(0); path.push_back(0);
  path.insert(path.end(), {0x7f, 0xff, 4, 0});
  u16(static_cast<uint16_t>(path.size()));
  wstr("debian");
  data.insert(data.end(), path.begin(), path.end());
  std::vector<uint8_t> name;
  for (char c : std::string("Boot0001")) { name.push_back(uint8_t(c)); name.push_back(0); }
  name.push_back(0); name.push_back(0);
  size_t v = 72 + 28;
  store_little_u16(&b[v], 0x55aa);
  b[v + 2] = 0x3f;
  b[v + 3] = 0;
  std::fill(b.begin() + static_cast<long>(v) + 4, b.begin() + static_cast<long>(v) + 60, 0);
  store_little_u32(&b[v + 36], static_cast<uint32_t>(name.size()));
  store_little_u32(&b[v + 40], static_cast<uint32_t>(data.size()));
  const uint8_t global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                              0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
  std::memcpy(&b[v + 44], global, 16);
  std::memcpy(&b[v + 60], name.data(), name.size());
  std::memcpy(&b[v + 60 + name.size()], data.data(), data.size());
  return b;
}

TEST(Nvram, BootEntries) {
  auto e = ParseNvram(Nvram());
  ASSERT_TRUE(e) << e.error().message;
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].number, 1);
  EXPECT_TRUE((*e)[0].active);
  EXPECT_EQ((*e)[0].description, "debian");
  EXPECT_EQ((*e)[0].file, "\\EFI\\debian\\x.efi");
  EXPECT_EQ((*e)[0].partition_guid, "00112233-4455-6677-8899-AABBCCDDEEFF");
  std::vector<uint8_t> junk(100, 0);
  EXPECT_FALSE(ParseNvram(junk));
}

TEST(Nvram, OvmfTemplateHasNoEntries) {
  for (const char* path : {"/usr/share/OVMF/OVMF_VARS_4M.fd", "/usr/share/OVMF/OVMF_VARS.fd"}) {
    std::ifstream in(path, std::ios::binary);
    if (!in) continue;
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), {});
    auto e = ParseNvram(b);
    ASSERT_TRUE(e) << path << ": " << e.error().message;
    EXPECT_TRUE(e->empty());
    return;
  }
  GTEST_SKIP() << "OVMF (Debian ovmf) not installed";
}

}  // namespace
}  // namespace imgcheck::vm
