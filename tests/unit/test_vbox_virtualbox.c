/* Parsers of VBoxManage output (providers/virtualbox/parse.c), fed the
 * formats VirtualBox 7 prints (providers/virtualbox/README.md). */
#include <stdlib.h>

#include "providers/virtualbox/vbox.h"
#include "tests/unit/t.h"

static void version_skips_warnings(void)
{
	int major = 0, minor = 0;
	char ver[64];
	CHECK(vbox_parse_version("7.0.14r161095\n", &major, &minor, ver, sizeof(ver)) == 0);
	CHECK(major == 7 && minor == 0);
	CHECK_STR(ver, "7.0.14r161095");
	CHECK(vbox_parse_version("WARNING: The vboxdrv kernel module is not loaded.\n"
				 "WARNING: Run /sbin/vboxconfig as root.\n6.1.50r161033\n",
				 &major, &minor, ver, sizeof(ver)) == 0);
	CHECK(major == 6 && minor == 1);
	CHECK(vbox_parse_version("WARNING: only warnings\n", &major, &minor, ver, sizeof(ver)) < 0);
	CHECK(vbox_parse_version("garbage\n", &major, &minor, ver, sizeof(ver)) < 0);
}

static void error_lines(void)
{
	char msg[256], code[64];
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

	struct strv names;
	vbox_snapshot_names(&k, &names);
	CHECK(names.n == 3);
	if (names.n == 3) {
		CHECK_STR(names.v[0], "one");
		CHECK_STR(names.v[1], "two");
		CHECK_STR(names.v[2], "three \\ x");
	}
	strv_free(&names);
	vbox_kv_free(&k);
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
	"11: Hard disk image: source image=box-disk001.vmdk, target path=/root/VirtualBox "
	"VMs/debian-12/box-disk001.vmdk, controller=10;channel=0\n"
	"    (change target path with \"--vsys 0 --unit 11 --disk path\";\n"
	"12: Hard disk image: source image=data.vmdk, target path=/root/VirtualBox "
	"VMs/debian-12/data.vmdk, controller=10;channel=1\n";

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
		CHECK_STR(imp.disks[0].target, "/root/VirtualBox VMs/debian-12/box-disk001.vmdk");
		CHECK_STR(imp.disks[1].target, "/root/VirtualBox VMs/debian-12/data.vmdk");
	}
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

int main(void)
{
	RUN(version_skips_warnings);
	RUN(error_lines);
	RUN(machinereadable);
	RUN(natpf_rules);
	RUN(import_dry_run);
	RUN(list_vms);
	RUN(hostonlyifs);
	return T_END();
}
