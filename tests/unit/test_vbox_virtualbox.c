/* Parsers of VBoxManage output (providers/virtualbox/parse.c), fed the
 * formats VirtualBox 7 prints (providers/virtualbox/README.md). */
#include <stdlib.h>
#include <string.h>

#include "providers/virtualbox/vbox.h"
#include "tests/unit/t.h"

static void version_skips_warnings(void)
{
	struct vbox_version v;
	CHECK(vbox_parse_version("7.0.14r161095\n", &v) == 0);
	CHECK(v.major == 7 && v.minor == 0 && v.patch == 14);
	CHECK_STR(v.text, "7.0.14r161095");
	CHECK(vbox_parse_version("WARNING: The vboxdrv kernel module is not loaded.\n"
				 "WARNING: Run /sbin/vboxconfig as root.\n6.1.50r161033\n", &v) == 0);
	CHECK(v.major == 6 && v.minor == 1 && v.patch == 50);
	/* VirtualBox's own warning: indented continuation lines, a blank one. */
	CHECK(vbox_parse_version(
		      "WARNING: The vboxdrv kernel module is not loaded. Either there is no module\n"
		      "         available for the current kernel (6.1.0-18-amd64) or it failed to\n"
		      "         load. Please recompile the kernel module and install it by\n"
		      "\n"
		      "           sudo /sbin/vboxconfig\n"
		      "\n"
		      "         You will not be able to start VMs until this problem is fixed.\n"
		      "7.1.12r169651\n", &v) == 0);
	CHECK(v.major == 7 && v.minor == 1 && v.patch == 12);
	CHECK_STR(v.text, "7.1.12r169651");
	CHECK(vbox_parse_version("WARNING: only warnings\n", &v) < 0);
	CHECK(vbox_parse_version("garbage\n", &v) < 0);
	CHECK(vbox_parse_version("  7.0.14 indented, not after a warning\n", &v) < 0);
}

static void error_lines(void)
{
	char msg[512], code[64];
	vbox_parse_error(
		"VBoxManage: error: Could not find a registered machine named 'x'\n"
		"VBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component "
		"VirtualBoxWrap, interface IVirtualBox, callee nsISupports\n"
		"VBoxManage: error: Context: \"FindMachine(Bstr(a->argv[0]).raw(), "
		"machine.asOutParam())\" at line 2621 of file VBoxManageInfo.cpp\n",
		msg, sizeof(msg), code, sizeof(code));
	CHECK_STR(msg, "Could not find a registered machine named 'x'");
	CHECK_STR(code, "VBOX_E_OBJECT_NOT_FOUND");
	vbox_parse_error("Usage:\n\nVBoxManage modifyvm ...\n\nVBoxManage: error: Unknown option: --x\n",
			 msg, sizeof(msg), code, sizeof(code));
	CHECK_STR(msg, "Unknown option: --x");
	CHECK_STR(code, "");
	vbox_parse_error("", msg, sizeof(msg), code, sizeof(code));
	CHECK_STR(msg, "");
	/* A failed import: the cause is on the lines after the first. */
	vbox_parse_error(
		"Progress state: VBOX_E_FILE_ERROR\n"
		"VBoxManage: error: Appliance import failed\n"
		"VBoxManage: error: Could not create the imported medium '/p/box-disk001.vmdk'.\n"
		"VBoxManage: error: VMDK: cannot create image '/p/box-disk001.vmdk' "
		"(VERR_ALREADY_EXISTS)\n"
		"VBoxManage: error: Details: code VBOX_E_FILE_ERROR (0x80bb0004), component "
		"ApplianceWrap, interface IAppliance\n"
		"VBoxManage: error: Context: \"RTEXITCODE handleImportAppliance(HandlerArg*)\" at "
		"line 886 of file VBoxManageAppliance.cpp\n",
		msg, sizeof(msg), code, sizeof(code));
	CHECK_STR(msg, "Appliance import failed; Could not create the imported medium "
		       "'/p/box-disk001.vmdk'.; VMDK: cannot create image '/p/box-disk001.vmdk' "
		       "(VERR_ALREADY_EXISTS)");
	CHECK_STR(code, "VBOX_E_FILE_ERROR");
	/* No details (a refused host-only range): the code is on the "Code" line. */
	vbox_parse_error(
		"VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended "
		"info not available)\n"
		"VBoxManage: error: Context: \"EnableStaticIPConfig(Bstr(pszIp).raw(), "
		"Bstr(pszNetmask).raw())\" at line 242 of file VBoxManageHostonly.cpp\n",
		msg, sizeof(msg), code, sizeof(code));
	CHECK_STR(code, "E_ACCESSDENIED");
	CHECK(strstr(msg, "Access denied") != NULL);
}

static const char showvminfo[] =
	"name=\"web \\\"1\\\"\"\n"
	"groups=\"/\"\n"
	"UUID=\"0c5f2b6e-1111-2222-3333-444455556666\"\n"
	"memory=512\n"
	"VMState=\"running\"\n"
	"\"SATA Controller-0-0\"=\"/vms/web/box-disk001.vmdk\"\n"
	"nic1=\"nat\"\n"
	"Forwarding(0)=\"ssh,tcp,127.0.0.1,2222,,22\"\n"
	"Forwarding(1)=\"tcp80,tcp,,8080,,80\"\n"
	"nic2=\"hostonly\"\n"
	"hostonlyadapter2=\"vboxnet0\"\n"
	"SharedFolderNameMachineMapping1=\"srv_app\"\n"
	"CurrentSnapshotName=\"two\"\n"
	"SnapshotName=\"one\"\n"
	"SnapshotUUID=\"aaaa\"\n"
	"SnapshotName-1=\"two\"\n"
	"SnapshotName-1-1=\"three \\\\ x\"\n";

static void machinereadable(void)
{
	struct vbox_kvs k;
	vbox_kv_parse(showvminfo, &k);
	CHECK_STR(vbox_kv_get(&k, "name"), "web \"1\"");
	CHECK_STR(vbox_kv_get(&k, "memory"), "512");
	CHECK_STR(vbox_kv_get(&k, "VMState"), "running");
	CHECK_STR(vbox_kv_get(&k, "SATA Controller-0-0"), "/vms/web/box-disk001.vmdk");
	CHECK_STR(vbox_kv_get(&k, "hostonlyadapter2"), "vboxnet0");
	CHECK(vbox_kv_get(&k, "nic3") == NULL);

	struct vbox_natpf *f;
	size_t n = vbox_forwards(&k, &f);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(f[0].name, "ssh");
		CHECK_STR(f[0].host_ip, "127.0.0.1");
		CHECK(f[0].host_port == 2222 && f[0].guest_port == 22);
		CHECK_STR(f[1].host_ip, "");
		CHECK(f[1].host_port == 8080 && f[1].guest_port == 80);
	}
	free(f);

	vbox_kv_free(&k);
}

/* `snapshot list --machinereadable` prints names unescaped. */
static void snapshot_names(void)
{
	struct strv names;
	vbox_snapshot_names("SnapshotName=\"one\"\n"
			    "SnapshotUUID=\"aaaa\"\n"
			    "SnapshotName-1=\"say \"hi\"\"\n"
			    "SnapshotName-1-1=\"back\\\\slash \\\" q\"\n"
			    "CurrentSnapshotName=\"one\"\n"
			    "SnapshotNameX=\"no\"\n",
			    &names);
	CHECK(names.n == 3);
	if (names.n == 3) {
		CHECK_STR(names.v[0], "one");
		CHECK_STR(names.v[1], "say \"hi\"");
		CHECK_STR(names.v[2], "back\\\\slash \\\" q");
	}
	strv_free(&names);
}

static void natpf_rules(void)
{
	struct vbox_natpf f;
	CHECK(vbox_parse_natpf("ssh,tcp,127.0.0.1,2222,,22", &f) == 0);
	CHECK(vbox_parse_natpf("ssh,tcp,127.0.0.1,2222,22", &f) < 0);     /* 5 fields */
	CHECK(vbox_parse_natpf("ssh,tcp,,2222,,22,x", &f) < 0);           /* 7 fields */
	CHECK(vbox_parse_natpf("ssh,tcp,,99999,,22", &f) < 0);            /* port range */
	CHECK(vbox_parse_natpf("ssh,tcp,,22x,,22", &f) < 0);
}

static const char dry_run[] =
	"0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n"
	"Interpreting /boxes/debian/box.ovf...\n"
	"OK.\n"
	"Disks:\n"
	"  vmdisk1\t68719476736\t-1\thttp://www.vmware.com/interfaces/specifications/vmdk.html"
	"#streamOptimized\tbox-disk001.vmdk\t-1\t-1\t\n"
	"\n"
	"Virtual system 0:\n"
	" 0: Suggested OS type: \"Debian_64\"\n"
	" 1: Suggested VM name \"debian-12\"\n"
	"    (change with \"--vsys 0 --vmname <name>\")\n"
	" 3: Suggested VM settings file name \"/root/VirtualBox VMs/debian-12/debian-12.vbox\"\n"
	" 9: IDE controller, type PIIX4\n"
	"10: SATA controller, type AHCI\n"
	"11: Hard disk image: source image=box-disk001.vmdk, target path=box-disk001.vmdk, "
	"controller=10;channel=0\n"
	"    (change target path with \"--vsys 0 --unit 11 --disk path\";\n"
	"12: Hard disk image: source image=data.vmdk, target path=data.vmdk, "
	"controller=10;channel=1\n";

static void import_dry_run(void)
{
	struct vbox_import imp;
	struct diag d = {0};
	CHECK(vbox_parse_import(dry_run, &imp, &d) == 0);
	CHECK_STR(imp.name, "debian-12");
	CHECK_STR(imp.settings_file, "/root/VirtualBox VMs/debian-12/debian-12.vbox");
	CHECK(imp.ndisks == 2);
	if (imp.ndisks == 2) {
		CHECK(imp.disks[0].unit == 11 && imp.disks[1].unit == 12);
		CHECK_STR(imp.disks[0].target, "box-disk001.vmdk");
		CHECK_STR(imp.disks[1].target, "data.vmdk");
	}
	/* Vagrant's paths: the settings file's folder, the VM's own name. */
	char *t = vbox_disk_target(&imp, 0, "corral_web_1a2b");
	CHECK_STR(t, "/root/VirtualBox VMs/corral_web_1a2b/box-disk001.vmdk");
	free(t);
	t = vbox_disk_target(&imp, 1, "corral_web_1a2b");
	CHECK_STR(t, "/root/VirtualBox VMs/corral_web_1a2b/data.vmdk");
	free(t);
	/* 5.x printed full paths: the file name is what counts. */
	free(imp.disks[0].target);
	imp.disks[0].target = strdup("/elsewhere/debian-12/box-disk001.vmdk");
	t = vbox_disk_target(&imp, 0, "m");
	CHECK_STR(t, "/root/VirtualBox VMs/m/box-disk001.vmdk");
	free(t);
	free(imp.settings_file);
	imp.settings_file = NULL;
	CHECK(vbox_disk_target(&imp, 0, "m") == NULL);
	vbox_import_free(&imp);
	CHECK(vbox_parse_import("Interpreting x...\nOK.\n", &imp, &d) < 0);
	CHECK(strstr(d.msg, "no VM name") != NULL);
	vbox_import_free(&imp);
}

static void list_vms(void)
{
	const char *out = "\"corral_web_1a2b3c4d\" {11111111-2222-3333-4444-555555555555}\n"
			  "\"name with \\\"quotes\\\" {x}\" {66666666-7777-8888-9999-000000000000}\n"
			  "\"<inaccessible>\" {abcdefab-0000-0000-0000-000000000000}\n";
	char *u = vbox_vms_find(out, "corral_web_1a2b3c4d");
	CHECK_STR(u, "11111111-2222-3333-4444-555555555555");
	free(u);
	u = vbox_vms_find(out, "name with \"quotes\" {x}");
	CHECK_STR(u, "66666666-7777-8888-9999-000000000000");
	free(u);
	CHECK(vbox_vms_find(out, "corral_web") == NULL);
	char **ids = vbox_vms_uuids(out);
	size_t n = 0;
	while (ids[n])
		free(ids[n++]);
	free(ids);
	CHECK(n == 3);
}

static void hostonlyifs(void)
{
	const char *out = "Name:            vboxnet0\n"
			  "GUID:            786f6276-656e-4074-8000-0a0027000000\n"
			  "DHCP:            Disabled\n"
			  "IPAddress:       192.168.56.1\n"
			  "NetworkMask:     255.255.255.0\n"
			  "\n"
			  "Name:            vboxnet1\n"
			  "IPAddress:       10.20.0.1\n"
			  "NetworkMask:     255.255.0.0\n"
			  "\n";
	struct vbox_hostif v[4];
	CHECK(vbox_parse_hostifs(out, v, 4) == 2);
	CHECK_STR(v[0].name, "vboxnet0");
	CHECK_STR(v[0].ip, "192.168.56.1");
	CHECK_STR(v[1].name, "vboxnet1");
	CHECK_STR(v[1].mask, "255.255.0.0");
	CHECK(vbox_parse_hostifs(out, v, 1) == 1);
	CHECK(vbox_parse_hostifs("", v, 4) == 0);
}

static void host_only_ranges(void)
{
	struct vbox_range v[8];
	uint32_t n56 = 0xc0a83800u; /* 192.168.56.0 */
	size_t n = vbox_parse_ranges("# comment\n* 192.168.56.0/21\n", v, 8);
	CHECK(n == 1);
	CHECK(vbox_ranges_allow(v, n, n56, 24));
	CHECK(vbox_ranges_allow(v, n, 0xc0a83f00u, 24));  /* 192.168.63.0/24 */
	CHECK(!vbox_ranges_allow(v, n, 0xc0a84000u, 24)); /* 192.168.64.0/24 */
	CHECK(!vbox_ranges_allow(v, n, 0x0a1e0000u, 24)); /* 10.30.0.0/24 */
	CHECK(!vbox_ranges_allow(v, n, 0xc0a83000u, 20)); /* wider than the range */
	n = vbox_parse_ranges("* 10.0.0.0/8 192.168.0.0/16\n* 2001::/64\n*\t172.16.1.9/24\n", v, 8);
	CHECK(n == 3);
	CHECK(vbox_ranges_allow(v, n, 0x0a1e0000u, 24));
	CHECK(vbox_ranges_allow(v, n, 0xac100100u, 24)); /* host bits of the range masked */
	CHECK(!vbox_ranges_allow(v, n, 0xac100200u, 24));
	CHECK(vbox_parse_ranges("", v, 8) == 0);
	CHECK(!vbox_ranges_allow(v, 0, n56, 24));
}

static void resolver(void)
{
	CHECK(vbox_resolver_local("search x\nnameserver 127.0.1.1\n"));
	CHECK(vbox_resolver_local("nameserver 127.0.0.1\n"));
	CHECK(!vbox_resolver_local("nameserver 127.0.0.53\n"));
	CHECK(!vbox_resolver_local("nameserver 10.0.0.1\n# nameserver 127.0.0.1\n"));
}

/* VBox.log lines of VirtualBox 5.1 (a Vagrant user's log) and the fake's. */
static void redirect_failures(void)
{
	const char *log = "00:00:01.049747 NAT: DNS#1: 8.8.8.8\n"
			  "00:00:01.072530 NAT: Failed to redirect TCP 127.0.0.1:2222 -> 0.0.0.0:22 "
			  "(Unknown error)\n"
			  "00:00:01.072531 NAT: Failed to redirect UDP 0.0.0.0:5353 -> 0.0.0.0:53 "
			  "(Address already in use)\n"
			  "00:00:10.141551 NAT: DHCP offered IP address 10.0.2.15\n";
	CHECK(vbox_log_redirect_failed(log, 2222, false));
	CHECK(!vbox_log_redirect_failed(log, 2222, true));
	CHECK(!vbox_log_redirect_failed(log, 222, false));
	CHECK(!vbox_log_redirect_failed(log, 22220, false));
	CHECK(vbox_log_redirect_failed(log, 5353, true));
	CHECK(!vbox_log_redirect_failed(log, 53, true));
	CHECK(!vbox_log_redirect_failed("NAT: Failed to redirect TCP 127.0.0.1", 0, false));
	CHECK(!vbox_log_redirect_failed("", 2222, false));
}

int main(void)
{
	RUN(version_skips_warnings);
	RUN(error_lines);
	RUN(machinereadable);
	RUN(snapshot_names);
	RUN(natpf_rules);
	RUN(import_dry_run);
	RUN(list_vms);
	RUN(hostonlyifs);
	RUN(host_only_ranges);
	RUN(resolver);
	RUN(redirect_failures);
	return T_END();
}
