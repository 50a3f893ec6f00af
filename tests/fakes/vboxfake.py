#!/usr/bin/python3 -S
"""A stateful fake of VirtualBox's VBoxManage, for corral's tests.

VirtualBox cannot be installed where corral is built and tested, so the
virtualbox provider runs against this. It follows the contract in
providers/virtualbox/README.md: the same output formats, error lines
("VBoxManage: error: ..." with the VBOX_E_... code), exit codes (0 ok,
1 API failure, 2 syntax error with usage) and refusals as the real tool.

State lives in $VBOX_FAKE_HOME: state.json (VMs, snapshots, NICs, NAT
rules, shared folders, host-only interfaces) under an flock, the VM folders
under "VirtualBox VMs/", and calls.log (one line per invocation, its argv
shell-quoted) for golden tests.

startvm boots a stand-in guest: the host's sshd, chrooted into a per-VM
overlay of the box's rootfs/ (fake-only: a directory beside box.ovf
that real boxes do not have), in its own mount, pid, uts and ipc
namespaces, listening on the host port of the VM's NAT rule for guest port
22 (when that port is taken the VM runs without it, and Logs/VBox.log,
rotated at each power-up as VirtualBox does, says "NAT: Failed to
redirect"). Its PID 1 is this program (`__guest`): a guest poweroff (busybox
poweroff signals PID 1) or `controlvm acpipowerbutton` stops it cleanly;
`controlvm poweroff|savestate` and `unregistervm` kill it. `controlvm VM
natpfN RULE|delete NAME` changes a running VM's NAT rules (listed by
showvminfo as Forwarding(N) lines); nothing is bound for them. Snapshots copy
the overlay's upper layer, so restoring one really brings its files back.
The guest gets its VM's NICs (MACs) listed for its stub `ip`, and each
shared folder bound on /run/vboxsf/NAME for its stub mount.vboxsf (see
tests/fakes/vbox-testbox).

`export VM --output FILE.ovf` writes an OVF that import reads back, the
VM's disks beside it (a linked clone's from its master: export flattens
the chain) and a manifest; no rootfs/, so an exported box imports but its
VMs do not boot in the fake.

Version-dependent behaviour follows VBOX_FAKE_VERSION: from 6.1.28 on,
host-only interfaces take only addresses inside the ranges of
$CORRAL_VBOX_NETWORKS_CONF (a test hook the provider reads too; default
/etc/vbox/networks.conf), or 192.168.56.0/21 without that file, else
E_ACCESSDENIED with no details, as VBoxNetAdpCtl refuses them; 7.0.0's
showvminfo leaves out the Forwarding lines of a NIC with two or more NAT
rules. A VM whose settings file (its .vbox) is gone is inaccessible, as
after a VBoxSVC restart: `list vms` names it "<inaccessible>", showvminfo
prints only its name and UUID, other commands fail. 7.x's "aborted-saved"
state is set by tests in state.json; it is modelled like "saved".

Test knobs: VBOX_FAKE_VERSION (default 7.0.14r161095), VBOX_FAKE_WARNING
(a WARNING: block before the version: its first line after "WARNING: ",
further lines indented as VirtualBox indents them), VBOX_FAKE_TRANSIENT_LOCKS=N
(the next N modifyvm calls fail with VBOX_E_INVALID_OBJECT_STATE, as while
a session lock is being released), VBOX_FAKE_PORT_THIEF=N (the next N
power-ups find their SSH rule's host port taken by another program, as
when one binds it between corral's pick and the power-up: a listener
started then, its pid appended to $VBOX_FAKE_HOME/thieves, kept until the
test kills it).
"""
import fcntl
import importlib
import json
import os
import re
import shlex
import signal
import sys
import time


class Lazy:
    """A module imported at its first use: most calls need none of these,
    and importing them all is a quarter of a call's time."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        mod = importlib.import_module(self.name)
        globals()[self.name] = mod
        return getattr(mod, attr)


random, shutil, socket, subprocess = (Lazy(n) for n in ("random", "shutil", "socket", "subprocess"))

# Each call is a process of its own, and corral makes hundreds in a test:
# python3 -S (no site-packages: only the standard library is used) and
# the slower imports (ctypes, uuid, xml.etree, hashlib) where they are
# needed keep a call's start-up short.


def new_uuid():
    import uuid
    return str(uuid.uuid4())

CODES = {
    "VBOX_E_OBJECT_NOT_FOUND": 0x80BB0001,
    "VBOX_E_INVALID_VM_STATE": 0x80BB0002,
    "VBOX_E_FILE_ERROR": 0x80BB0004,
    "VBOX_E_INVALID_OBJECT_STATE": 0x80BB0007,
    "VBOX_E_OBJECT_IN_USE": 0x80BB000C,
    "E_INVALIDARG": 0x80070057,
    "E_ACCESSDENIED": 0x80070005,
}
# "Code X (0x...) - TEXT (extended info not available)": a failure without details.
BARE = {"E_INVALIDARG": "One or more arguments are invalid",
        "E_ACCESSDENIED": "Access denied"}
NIC_TYPES = ("none", "null", "nat", "bridged", "intnet", "hostonly", "hostonlynet",
             "generic", "natnetwork", "cloud")
NICS = range(1, 9)
PROGRESS = "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%"
USAGE = {
    "export": "VBoxManage export <machines> --output|-o <name>.<ovf|ova> [--ovf09|--ovf10|--ovf20] [--manifest] [--options ...]",
    "list": "VBoxManage list [--long|-l] [--sorted|-s] vms|runningvms|hostonlyifs",
    "showvminfo": "VBoxManage showvminfo <uuid|vmname> [--details] [--machinereadable]",
    "import": ("VBoxManage import <ovfname/ovaname> [--dry-run|-n] [--options keepallmacs|"
               "keepnatmacs|importtovdi] [--vsys <n> --vmname <name> | --ostype <t> | "
               "--memory <MB> | --cpus <n> | --basefolder <p> | --settingsfile <f> | "
               "--unit <n> --disk <path> | --unit <n> --ignore ...]"),
    "modifyvm": ("VBoxManage modifyvm <uuid|vmname> [--name <name>] [--memory <MB>] "
                 "[--cpus <n>] [--macaddress<1-N> auto|<12 hex>] [--nic<1-N> none|null|nat|"
                 "bridged|intnet|hostonly|hostonlynet|generic|natnetwork|cloud] "
                 "[--hostonlyadapter<1-N> <if>] [--cableconnected<1-N> on|off] "
                 "[--natpf<1-N> [<name>],tcp|udp,[<hostip>],<hostport>,[<guestip>],<guestport>] "
                 "[--natpf<1-N> delete <name>] [--natdnsproxy<1-N> on|off] "
                 "[--natdnshostresolver<1-N> on|off] [--rtcuseutc on|off]"),
    "startvm": "VBoxManage startvm <uuid|vmname>... [--type gui|headless|separate]",
    "controlvm": ("VBoxManage controlvm <uuid|vmname> pause|resume|poweroff|savestate|"
                  "acpipowerbutton | natpf<1-N> [<rulename>],tcp|udp,[<hostip>],<hostport>,"
                  "[<guestip>],<guestport> | natpf<1-N> delete <rulename>"),
    "discardstate": "VBoxManage discardstate <uuid|vmname>",
    "snapshot": ("VBoxManage snapshot <uuid|vmname> take <name> [--description <d>] [--live] | "
                 "delete <uuid|snapname> | restore <uuid|snapname> | restorecurrent | "
                 "list [--details|--machinereadable]"),
    "clonevm": ("VBoxManage clonevm <uuid|vmname> [--snapshot <uuid|name>] [--mode machine|"
                "machineandchildren|all] [--options link|keepallmacs|keepnatmacs|"
                "keepdisknames|keephwuuids] [--name <name>] [--basefolder <basefolder>] "
                "[--register]"),
    "sharedfolder": ("VBoxManage sharedfolder add <uuid|vmname> --name <name> --hostpath "
                     "<hostpath> [--transient] [--readonly] [--automount] | remove "
                     "<uuid|vmname> --name <name> [--transient]"),
    "unregistervm": "VBoxManage unregistervm <uuid|vmname> [--delete]",
    "hostonlyif": ("VBoxManage hostonlyif ipconfig <name> [--dhcp | --ip <ipv4> [--netmask "
                   "<ipv4>]] | create | remove <name>"),
    "guestproperty": "VBoxManage guestproperty get <uuid|vmname> <property> [--verbose]",
}

HOME = os.environ.get("VBOX_FAKE_HOME", "")
VERSION = os.environ.get("VBOX_FAKE_VERSION", "7.0.14r161095")


def version():
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", VERSION)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)
LOCK_FD = None


class Fail(Exception):
    """An API failure: exit 1 with VBoxManage's error lines. msg may be a
    list (one error line each); bare: the code without a Details line, as
    for errors carrying no extended info; pre: stderr lines before them."""

    def __init__(self, msg, code=None, context="", exit=1, bare=False, pre=()):
        super().__init__(msg)
        self.msg, self.code, self.context, self.exit = msg, code, context, exit
        self.bare, self.pre = bare, pre


class Syntax(Exception):
    """A syntax error: usage and the message, exit 2."""

    def __init__(self, cmd, msg):
        super().__init__(msg)
        self.cmd, self.msg = cmd, msg


def out(*lines):
    for line in lines:
        print(line)


# ---------------------------------------------------------------- state

def load():
    path = os.path.join(HOME, "state.json")
    if not os.path.exists(path):
        return {"vms": {}, "hostonlyifs": [], "transient_locks_used": 0}
    with open(path) as f:
        return json.load(f)


def save(st):
    path = os.path.join(HOME, "state.json")
    with open(path + ".tmp", "w") as f:
        json.dump(st, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def vms_folder():
    return os.path.join(HOME, "VirtualBox VMs")


def accessible(vm):
    return os.path.exists(vm["cfgfile"])


def find_vm(st, ref, any_vm=False):
    for vm in st["vms"].values():
        if vm["uuid"] == ref or (vm["name"] == ref and accessible(vm)):
            if not any_vm and not accessible(vm):
                raise Fail("The object functionality is limited", "E_ACCESSDENIED",
                           "COMGETTER(State)(&machineState)", bare=True)
            return vm
    if re.fullmatch(r"[0-9a-f-]{36}", ref):
        what = "with UUID {%s}" % ref
    else:
        what = "named '%s'" % ref
    raise Fail("Could not find a registered machine %s" % what, "VBOX_E_OBJECT_NOT_FOUND",
               'FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())')


def new_mac():
    return "080027%06X" % random.randrange(1 << 24)


def proc_start(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return 0 if fields[0] == "Z" else int(fields[19])


def guest_alive(vm):
    g = vm.get("guest")
    return bool(g) and proc_start(g["pid"]) == g["start"]


def refresh(st):
    """A guest that powered itself off (or died) leaves its VM stopped."""
    for vm in st["vms"].values():
        if vm["state"] in ("running", "paused") and vm.get("guest") and not guest_alive(vm):
            marker = os.path.join(guest_dir(vm), "powered-off")
            vm["state"] = "poweroff" if os.path.exists(marker) else "aborted"
            vm["guest"] = None


SAVED = {"saved": "Saved", "aborted-saved": "AbortedSaved"}


def require_stopped(vm, doing="lock"):
    if vm["state"] in ("running", "paused"):
        raise Fail("The machine '%s' is already locked for a session (or being unlocked)"
                   % vm["name"], "VBOX_E_INVALID_OBJECT_STATE",
                   'LockMachine(a->session, LockType_Write)')
    if vm["state"] in SAVED and doing == "modify":
        raise Fail("The machine is not mutable (state is %s)" % SAVED[vm["state"]],
                   "VBOX_E_INVALID_VM_STATE", "machine->COMGETTER(Name)")


def require_running(vm):
    if vm["state"] not in ("running", "paused"):
        raise Fail("Machine '%s' is not currently running." % vm["name"])


# ---------------------------------------------------------------- args

def take(cmd, args, i, opt):
    if i + 1 >= len(args):
        raise Syntax(cmd, "Missing argument to '%s'" % opt)
    return args[i + 1]


def nic_opt(cmd, opt, base):
    m = re.fullmatch(r"--%s([1-8])" % base, opt)
    if not m:
        raise Syntax(cmd, "Unknown option: %s" % opt)
    return m.group(1)


def to_int(cmd, opt, v, lo=0, hi=1 << 31):
    if not re.fullmatch(r"\d+", v) or not lo <= int(v) <= hi:
        raise Syntax(cmd, "Invalid argument '%s' to '%s'" % (v, opt))
    return int(v)


def on_off(cmd, opt, v):
    if v not in ("on", "off"):
        raise Syntax(cmd, "Invalid %s argument '%s'" % (opt, v))
    return v


def valid_ipv4(s):
    try:
        socket.inet_aton(s)
    except OSError:
        return False
    return s.count(".") == 3


def parse_rule(cmd, rule):
    f = rule.split(",")
    bad = "Invalid NAT rule '%s': expected name,tcp|udp,hostip,hostport,guestip,guestport" % rule
    if len(f) != 6 or f[1] not in ("tcp", "udp") or not f[0]:
        raise Syntax(cmd, bad)
    for ip in (f[2], f[4]):
        if ip and not valid_ipv4(ip):
            raise Syntax(cmd, bad)
    for port in (f[3], f[5]):
        if not re.fullmatch(r"\d+", port) or not 0 < int(port) < 65536:
            raise Syntax(cmd, bad)
    return {"name": f[0], "proto": f[1], "hostip": f[2], "hostport": int(f[3]),
            "guestip": f[4], "guestport": int(f[5])}


def rule_str(r):
    return "%s,%s,%s,%d,%s,%d" % (r["name"], r["proto"], r["hostip"], r["hostport"],
                                  r["guestip"], r["guestport"])


# ---------------------------------------------------------------- list / show

def cmd_list(st, args):
    args = [a for a in args if a not in ("--long", "-l", "--sorted", "-s")]
    if len(args) != 1:
        raise Syntax("list", "Incorrect number of parameters")
    what = args[0]
    if what in ("vms", "runningvms"):
        for vm in st["vms"].values():
            if not vm.get("registered", True):
                continue
            if not accessible(vm):
                if what == "vms":
                    out('"<inaccessible>" {%s}' % vm["uuid"])
            elif what == "vms" or vm["state"] == "running":
                out('"%s" {%s}' % (vm["name"], vm["uuid"]))
    elif what == "hostonlyifs":
        for hi in st["hostonlyifs"]:
            out("Name:            %s" % hi["name"], "GUID:            %s" % hi["guid"],
                "DHCP:            Disabled", "IPAddress:       %s" % hi["ip"],
                "NetworkMask:     %s" % hi["mask"], "IPV6Address:     ",
                "IPV6NetworkMaskPrefixLength: 0", "HardwareAddress: %s" % hi["mac"],
                "MediumType:      Ethernet", "Wireless:        No", "Status:          Up",
                "VBoxNetworkName: HostInterfaceNetworking-%s" % hi["name"], "")
    else:
        raise Syntax("list", "Unknown subcommand: %s" % what)


def mr_quote(v):
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


def snapshot_tree(vm):
    """(key suffix, snapshot) in VirtualBox's order: "", "-1", "-1-1", "-2"..."""
    def walk(snap, key):
        yield key, snap
        kids = [k for k in vm["snapshots"] if k["parent"] == snap["uuid"]]
        for i, kid in enumerate(kids, 1):
            yield from walk(kid, "%s-%d" % (key, i))
    roots = [s for s in vm["snapshots"] if s["parent"] is None]
    return [x for r in roots[:1] for x in walk(r, "")]


def cmd_showvminfo(st, args):
    opts = [a for a in args[1:]]
    for o in opts:
        if o not in ("--machinereadable", "--details"):
            raise Syntax("showvminfo", "Unknown option: %s" % o)
    if not args:
        raise Syntax("showvminfo", "Incorrect number of parameters")
    vm = find_vm(st, args[0], any_vm=True)
    if not accessible(vm):
        if "--machinereadable" in opts:
            out('name="<inaccessible>"', 'UUID="%s"' % vm["uuid"])
        else:
            out("Name:            <inaccessible!>", "UUID:            %s" % vm["uuid"],
                "Config file:     %s" % vm["cfgfile"])
        return
    if "--machinereadable" not in opts:
        out("Name:                        %s" % vm["name"], "UUID:                        %s"
            % vm["uuid"], "State:                       %s" % vm["state"])
        return
    lines = [("name", vm["name"]), ("groups", "/"), ("ostype", vm["ostype"]),
             ("UUID", vm["uuid"]), ("CfgFile", vm["cfgfile"]),
             ("SnapFldr", os.path.join(vm["folder"], "Snapshots")),
             ("LogFldr", os.path.join(vm["folder"], "Logs")),
             ("memory", vm["memory"]), ("cpus", vm["cpus"]), ("VMState", vm["state"]),
             ("VMStateChangeTime", vm["state_time"])]
    for i, disk in enumerate(vm["disks"]):
        lines.append(("SATA Controller-%d-0" % i, disk))
    for n in NICS:
        nic = vm["nics"].get(str(n), {"type": "none"})
        if nic["type"] == "nat":
            lines.append(("natnet%d" % n, "nat"))
        if nic["type"] != "none":
            lines += [("macaddress%d" % n, nic["mac"]),
                      ("cableconnected%d" % n, nic.get("cable", "on"))]
        lines.append(("nic%d" % n, nic["type"]))
        if nic["type"] == "hostonly":
            lines.append(("hostonlyadapter%d" % n, nic.get("hostonly", "")))
        rules = vm["natpf"].get(str(n), [])
        if nic["type"] == "nat" and not (version() == (7, 0, 0) and len(rules) > 1):
            for i, r in enumerate(rules):
                lines.append(("Forwarding(%d)" % i, rule_str(r)))
    for i, sf in enumerate(vm["sharedfolders"], 1):
        lines += [("SharedFolderNameMachineMapping%d" % i, sf["name"]),
                  ("SharedFolderPathMachineMapping%d" % i, sf["hostpath"])]
    tree = snapshot_tree(vm)
    cur = [(k, s) for k, s in tree if s["uuid"] == vm["current_snapshot"]]
    if cur:
        lines += [("CurrentSnapshotName", cur[0][1]["name"]),
                  ("CurrentSnapshotUUID", cur[0][1]["uuid"]),
                  ("CurrentSnapshotNode", "SnapshotName" + cur[0][0])]
    for key, s in tree:
        lines += [("SnapshotName" + key, s["name"]), ("SnapshotUUID" + key, s["uuid"])]
    for k, v in lines:
        key = k if re.fullmatch(r"[A-Za-z0-9()]+", k) else mr_quote(k)
        out("%s=%s" % (key, v if isinstance(v, int) else mr_quote(v)))


# ---------------------------------------------------------------- import

NS = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1",
      "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
              "CIM_ResourceAllocationSettingData",
      "vbox": "http://www.virtualbox.org/ovf/machine"}


def read_ovf(path):
    import xml.etree.ElementTree as ET

    def bad(why):
        return Fail("Appliance read failed", "VBOX_E_FILE_ERROR",
                    "%s: %s" % (path, why))
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise bad("Error reading OVF file: %s" % e)
    if root.tag != "{%s}Envelope" % NS["ovf"]:
        raise bad("not an OVF envelope")
    systems = root.findall("ovf:VirtualSystem", NS)
    if len(systems) != 1:
        raise bad("expected one VirtualSystem, found %d" % len(systems))
    vs = systems[0]
    files = {f.get("{%s}id" % NS["ovf"]): f.get("{%s}href" % NS["ovf"])
             for f in root.findall("ovf:References/ovf:File", NS)}
    disks = {d.get("{%s}diskId" % NS["ovf"]): files.get(d.get("{%s}fileRef" % NS["ovf"]))
             for d in root.findall("ovf:DiskSection/ovf:Disk", NS)}
    info = {"name": vs.get("{%s}id" % NS["ovf"]) or "vm", "cpus": 1, "memory": 128,
            "disks": [], "ostype": "Other"}
    os_el = vs.find("ovf:OperatingSystemSection/vbox:OSType", NS)
    if os_el is not None and os_el.text:
        info["ostype"] = os_el.text
    for item in vs.findall("ovf:VirtualHardwareSection/ovf:Item", NS):
        rtype = item.findtext("rasd:ResourceType", "", NS)
        qty = item.findtext("rasd:VirtualQuantity", "0", NS)
        if rtype == "3":
            info["cpus"] = int(qty)
        elif rtype == "4":
            info["memory"] = int(qty)
        elif rtype == "17":
            ref = item.findtext("rasd:HostResource", "", NS).rsplit("/", 1)[-1]
            href = disks.get(ref)
            if not href:
                raise bad("disk %s is not in the DiskSection/References" % ref)
            src = os.path.join(os.path.dirname(os.path.abspath(path)), href)
            if not os.path.isfile(src):
                raise bad("disk image %s not found" % href)
            with open(src, "rb") as f:
                head = f.read(21)
            if head[:4] != b"KDMV" and not head.startswith(b"# Disk DescriptorFile"):
                raise bad("%s is not a VMDK image" % href)
            info["disks"].append(href)
    if not info["disks"]:
        raise bad("the VirtualSystem has no disk")
    return info


def suggested(info, name):
    folder = os.path.join(vms_folder(), name)
    return folder, os.path.join(folder, name + ".vbox")


def print_dry_run(path, info):
    folder, cfg = suggested(info, info["name"])
    out(PROGRESS, "Interpreting %s..." % os.path.abspath(path), "OK.", "Disks:")
    for i, d in enumerate(info["disks"], 1):
        out("  vmdisk%d\t1073741824\t-1\thttp://www.vmware.com/interfaces/specifications/"
            "vmdk.html#streamOptimized\t%s\t-1\t-1\t" % (i, d))
    out("", "Virtual system 0:",
        ' 0: Suggested OS type: "%s"' % info["ostype"],
        '    (change with "--vsys 0 --ostype <type>"; use "list ostypes" to list all '
        'possible values)',
        ' 1: Suggested VM name "%s"' % info["name"],
        '    (change with "--vsys 0 --vmname <name>")',
        ' 2: Suggested VM group "/"',
        '    (change with "--vsys 0 --group <group>")',
        ' 3: Suggested VM settings file name "%s"' % cfg,
        '    (change with "--vsys 0 --settingsfile <filename>")',
        ' 4: Suggested VM base folder "%s"' % vms_folder(),
        '    (change with "--vsys 0 --basefolder <path>")',
        " 5: Number of CPUs: %d" % info["cpus"],
        '    (change with "--vsys 0 --cpus <n>")',
        " 6: Guest memory: %d MB" % info["memory"],
        '    (change with "--vsys 0 --memory <MB>")',
        " 7: Network adapter: orig NAT, config 3, extra slot=0;type=NAT",
        " 8: SATA controller, type AHCI",
        '    (disable with "--vsys 0 --unit 8 --ignore")')
    for i, d in enumerate(info["disks"]):
        unit = 9 + i
        # Since 6.0 the target path is the bare file name.
        out("%2d: Hard disk image: source image=%s, target path=%s, controller=8;channel=%d"
            % (unit, d, d, i),
            '    (change target path with "--vsys 0 --unit %d --disk path";' % unit,
            '    disable with "--vsys 0 --unit %d --ignore")' % unit)


def parse_import(args):
    o = {"ovf": None, "dry": False, "vmname": None, "units": {}, "memory": None,
         "cpus": None, "basefolder": None}
    vsys = unit = None
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-") and o["ovf"] is None:
            o["ovf"] = a
        elif a in ("-n", "--dry-run"):
            o["dry"] = True
        elif a == "--options":
            take("import", args, i, a)
            i += 1
        elif a == "--vsys":
            vsys = to_int("import", a, take("import", args, i, a))
            if vsys != 0:
                raise Fail("Invalid virtual system identifier %d" % vsys, "E_INVALIDARG")
            unit = None
            i += 1
        elif a in ("--vmname", "--ostype", "--memory", "--cpus", "--basefolder",
                   "--settingsfile", "--group", "--description", "--unit"):
            if vsys is None:
                raise Syntax("import", 'Option "%s" requires preceding --vsys argument.' % a)
            v = take("import", args, i, a)
            i += 1
            if a == "--unit":
                unit = to_int("import", a, v)
            elif a in ("--memory", "--cpus"):
                o[a[2:]] = to_int("import", a, v, 1)
            elif a in ("--vmname", "--basefolder"):
                o[a[2:]] = v
        elif a in ("--disk", "--ignore", "--controller", "--port"):
            if unit is None:
                raise Syntax("import", 'Option "%s" requires preceding --unit argument.' % a)
            if a != "--ignore":
                v = take("import", args, i, a)
                i += 1
                if a == "--disk":
                    o["units"][unit] = v
        else:
            raise Syntax("import", "Unknown option: %s" % a)
        i += 1
    if o["ovf"] is None:
        raise Syntax("import", "Incorrect number of parameters")
    return o


def new_vm(st, name, ostype, memory, cpus, basefolder=None):
    if any(v["name"] == name for v in st["vms"].values()):
        folder, cfg = suggested(None, name)
        raise Fail("Machine settings file '%s' already exists" % cfg, "VBOX_E_FILE_ERROR",
                   "CreateMachine")
    folder = os.path.join(basefolder or vms_folder(), name)
    vm = {"uuid": new_uuid(), "name": name, "folder": folder,
          "cfgfile": os.path.join(folder, name + ".vbox"), "ostype": ostype,
          "memory": memory, "cpus": cpus, "state": "poweroff", "state_time": now(),
          "nics": {"1": {"type": "nat", "mac": new_mac(), "cable": "on"}},
          "natpf": {}, "sharedfolders": [], "snapshots": [], "current_snapshot": None,
          "disks": [], "rootfs": None, "guest": None, "linked_to": None}
    os.makedirs(os.path.join(folder, "Logs"), exist_ok=True)
    os.makedirs(upper_dir(vm), exist_ok=True)
    with open(vm["cfgfile"], "w") as f:
        f.write('<?xml version="1.0"?>\n<VirtualBox><Machine name="%s" uuid="{%s}"/>'
                '</VirtualBox>\n' % (name, vm["uuid"]))
    st["vms"][vm["uuid"]] = vm
    return vm


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000", time.gmtime())


def cmd_import(st, args):
    o = parse_import(args)
    info = read_ovf(o["ovf"])
    if o["dry"]:
        print_dry_run(o["ovf"], info)
        return
    out(PROGRESS, "Interpreting %s..." % os.path.abspath(o["ovf"]), "OK.")
    name = o["vmname"] or info["name"]
    vm = new_vm(st, name, info["ostype"], o["memory"] or info["memory"],
                o["cpus"] or info["cpus"], o["basefolder"])
    src_dir = os.path.dirname(os.path.abspath(o["ovf"]))
    for i, d in enumerate(info["disks"]):
        # A relative --disk is made absolute against the current directory.
        target = os.path.abspath(o["units"].get(9 + i, os.path.join(vm["folder"], d)))
        if os.path.exists(target):
            del st["vms"][vm["uuid"]]
            shutil.rmtree(vm["folder"], ignore_errors=True)
            raise Fail(["Appliance import failed",
                        "Could not create the imported medium '%s'." % target,
                        "VMDK: cannot create image '%s' (VERR_ALREADY_EXISTS)" % target],
                       "VBOX_E_FILE_ERROR", "RTEXITCODE handleImportAppliance(HandlerArg*)",
                       pre=("Progress state: VBOX_E_FILE_ERROR",))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(src_dir, d), target)
        vm["disks"].append(target)
    rootfs = os.path.join(src_dir, "rootfs")
    vm["rootfs"] = rootfs if os.path.isdir(rootfs) else None
    out("Successfully imported the appliance.")


# ---------------------------------------------------------------- modifyvm

def transient_lock(st):
    want = int(os.environ.get("VBOX_FAKE_TRANSIENT_LOCKS", "0") or 0)
    if st["transient_locks_used"] < want:
        st["transient_locks_used"] += 1
        return True
    return False


def set_natpf(vm, n, rule_or_delete, name=None):
    rules = vm["natpf"].setdefault(n, [])
    if rule_or_delete == "delete":
        if not any(r["name"] == name for r in rules):
            raise Fail(None, "E_INVALIDARG", "RemoveRedirect(Bstr(ValueUnion.psz).raw())",
                       bare=True)
        vm["natpf"][n] = [r for r in rules if r["name"] != name]
        return
    r = rule_or_delete
    for o in rules:
        if o["name"] == r["name"]:
            raise Fail("A NAT rule of this name already exists", "E_INVALIDARG",
                       "AddRedirect")
        if o["proto"] == r["proto"] and o["hostport"] == r["hostport"] and \
                o["hostip"] == r["hostip"]:
            raise Fail("A NAT rule for this host port and this host IP already exists",
                       "E_INVALIDARG", "AddRedirect")
    rules.append(r)


def modify_one(vm, args, i):
    """Applies option args[i] (with its values); returns the next index."""
    c = "modifyvm"
    a = args[i]
    simple = {"--name": None, "--ostype": None, "--memory": 4, "--cpus": 1,
              "--rtcuseutc": "onoff", "--ioapic": "onoff", "--vram": 0,
              "--description": None, "--graphicscontroller": None, "--audio-driver": None}
    if a in simple:
        v = take(c, args, i, a)
        kind = simple[a]
        if kind == "onoff":
            on_off(c, a, v)
        elif isinstance(kind, int):
            v = to_int(c, a, v, kind)
        if a in ("--name", "--memory", "--cpus", "--ostype"):
            vm[a[2:]] = v
        return i + 2
    base = re.match(r"--([a-z]+?)(\d*)$", a)
    kind = base.group(1) if base else ""
    known = ("macaddress", "nic", "hostonlyadapter", "cableconnected", "natpf",
             "natdnsproxy", "natdnshostresolver", "nictype")
    if kind not in known:
        raise Syntax(c, "Unknown option: %s" % a)
    n = nic_opt(c, a, kind)
    v = take(c, args, i, a)
    nic = vm["nics"].setdefault(n, {"type": "none", "mac": new_mac(), "cable": "on"})
    if kind == "macaddress":
        if v != "auto" and not re.fullmatch(r"[0-9A-Fa-f]{12}", v):
            raise Syntax(c, "Invalid MAC address '%s'" % v)
        nic["mac"] = new_mac() if v == "auto" else v.upper()
    elif kind == "nic":
        if v not in NIC_TYPES:
            raise Syntax(c, "Invalid type '%s' specfied for NIC %s" % (v, n))
        nic["type"] = v
    elif kind == "hostonlyadapter":
        nic["hostonly"] = v
    elif kind in ("cableconnected", "natdnsproxy", "natdnshostresolver"):
        nic[kind] = on_off(c, a, v)
    elif kind == "natpf":
        if v == "delete":
            set_natpf(vm, n, "delete", take(c, args, i + 1, a))
            return i + 3
        set_natpf(vm, n, parse_rule(c, v))
    return i + 2


def cmd_modifyvm(st, args):
    if len(args) < 2:
        raise Syntax("modifyvm", "Incorrect number of parameters")
    # As VBoxManageModifyVM.cpp: the VM is looked up and locked first;
    # then its getopt loop stops at a bad option (exit 1, not 2: the
    # session is open) before the settings are saved, so nothing applies.
    vm = find_vm(st, args[0])
    require_stopped(vm)
    if transient_lock(st):
        raise Fail("The machine '%s' is already locked for a session (or being unlocked)"
                   % vm["name"], "VBOX_E_INVALID_OBJECT_STATE",
                   "LockMachine(a->session, LockType_Write)")
    trial = json.loads(json.dumps(vm))
    i = 1
    try:
        while i < len(args):
            i = modify_one(trial, args, i)
    except Syntax as e:
        raise Fail(e.msg)
    require_stopped(vm, "modify")
    if trial["name"] != vm["name"] and any(v["name"] == trial["name"]
                                           for v in st["vms"].values()):
        raise Fail("Could not rename the machine: '%s' exists" % trial["name"],
                   "VBOX_E_FILE_ERROR", "COMSETTER(Name)")
    vm.update(trial)


# ---------------------------------------------------------------- the guest

def guest_dir(vm):
    return os.path.join(vm["folder"], "guest")


def upper_dir(vm):
    return os.path.join(guest_dir(vm), "upper")


def ssh_rule(vm):
    rules = [r for r in vm["natpf"].get("1", []) if r["guestport"] == 22]
    rules.sort(key=lambda r: r["name"] != "ssh")
    return rules[0] if rules else None


def run(argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def guest_mounts(vm, root):
    run(["mount", "--make-rprivate", "/"])
    g = guest_dir(vm)
    os.makedirs(os.path.join(g, "work"), exist_ok=True)
    os.makedirs(root, exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
         % (vm["rootfs"], upper_dir(vm), os.path.join(g, "work")), root])
    for d in ("proc", "dev", "run", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")])
    run(["mount", "--rbind", "/dev", os.path.join(root, "dev")])
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", os.path.join(root, "run")])
    os.makedirs(os.path.join(root, "run/sshd"), mode=0o755)
    guest_devices(vm, os.path.join(root, "run"))
    try:
        with open(os.path.join(root, "etc/hostname")) as f:
            socket.sethostname(f.read().strip() or "localhost")
    except OSError:
        pass


def guest_devices(vm, run_dir):
    """What VirtualBox gives a guest, as far as the stand-in can have it:
    its NICs listed for the guest's stub `ip` (the stand-in shares the
    host's network stack, which it must not touch), and each shared folder
    bound on /run/vboxsf/NAME for the guest's stub mount.vboxsf."""
    links = []
    for n in NICS:
        nic = vm["nics"].get(str(n))
        if nic and nic["type"] != "none":
            mac = ":".join(nic["mac"][i:i + 2] for i in range(0, 12, 2)).lower()
            links.append("%d: eth%d: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN"
                         "\\    link/ether %s brd ff:ff:ff:ff:ff:ff\n" % (n + 1, n - 1, mac))
    os.makedirs(os.path.join(run_dir, "fake-ip"))
    with open(os.path.join(run_dir, "fake-ip", "links"), "w") as f:
        f.write("".join(links))
    for sf in vm["sharedfolders"]:
        target = os.path.join(run_dir, "vboxsf", sf["name"])
        if os.path.isdir(sf["hostpath"]):
            os.makedirs(target)
            run(["mount", "--bind", sf["hostpath"], target])


class PowerOff(Exception):
    pass


def power_signal(signum, frame):
    raise PowerOff()


def guest_init(vm, report_w):
    """PID 1 of the guest's namespaces: mounts, sshd, then waits."""
    root = os.path.join(guest_dir(vm), "root")
    log = open(os.path.join(vm["folder"], "Logs", "console.log"), "ab")
    rule = ssh_rule(vm)
    chroot = lambda: (os.chroot(root), os.chdir("/"))  # noqa: E731
    try:
        guest_mounts(vm, root)
        # One host key type, made on first boot: ssh-keygen -A's RSA key
        # alone costs most of a second of CPU per new VM, for nothing a
        # test looks at.
        if not os.path.exists(os.path.join(root, "etc/ssh/ssh_host_ed25519_key")):
            run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                 "-f", "/etc/ssh/ssh_host_ed25519_key"], preexec_fn=chroot)
        sshd = None
        if rule and redirect_possible(vm, rule):
            argv = ["/usr/sbin/sshd", "-D", "-e", "-o", "PidFile=none", "-p",
                    str(rule["hostport"]), "-o", "ListenAddress=%s" % (rule["hostip"] or "0.0.0.0")]
            sshd = subprocess.Popen(argv, preexec_fn=chroot, stdout=log, stderr=log)
        # No forward (or its port taken): the guest runs, its sshd
        # unreachable, as on a real VM.
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        os.write(report_w, ("error %s %s" % (e, detail.decode(errors="replace"))).encode())
        os._exit(1)
    # The host's /proc is still mounted at /: "self" is our pid out there.
    os.write(report_w, b"ok %s %d" % (os.readlink("/proc/self").encode(), sshd is not None))
    os.close(report_w)
    for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGPWR):
        signal.signal(s, power_signal)
    try:
        while True:
            if sshd is None:
                signal.pause()
                continue
            pid, _ = os.wait()
            if pid == sshd.pid:
                break
    except (PowerOff, ChildProcessError):
        pass
    open(os.path.join(guest_dir(vm), "powered-off"), "w").close()
    os.kill(-1, signal.SIGKILL)
    os._exit(0)


def vbox_log(vm, line):
    with open(os.path.join(vm["folder"], "Logs", "VBox.log"), "a") as f:
        f.write("00:00:00.%06d %s\n" % (random.randrange(1000000), line))


def rotate_log(vm):
    """Each power-up starts a new VBox.log; the last three are kept as
    VBox.log.1 .. .3, as VirtualBox does."""
    logs = os.path.join(vm["folder"], "Logs")
    for i in (2, 1, 0):
        src = os.path.join(logs, "VBox.log" + (".%d" % i if i else ""))
        if os.path.exists(src):
            os.replace(src, os.path.join(logs, "VBox.log.%d" % (i + 1)))
    vbox_log(vm, "VirtualBox VM %s (fake) starting" % VERSION)


def redirect_possible(vm, rule):
    """VirtualBox's NAT binds a rule's host port at power-up; when that port
    is taken the VM runs all the same, without the forward, and VBox.log
    says so (VirtualBox 5.x to 7.0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((rule["hostip"] or "0.0.0.0", rule["hostport"]))
        return True
    except OSError as e:
        vbox_log(vm, "NAT: Failed to redirect TCP %s:%d -> 0.0.0.0:%d (%s)" % (
            rule["hostip"] or "0.0.0.0", rule["hostport"], rule["guestport"], e.strerror))
        return False
    finally:
        s.close()


THIEF = """import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""


def port_thief(st, vm):
    want = int(os.environ.get("VBOX_FAKE_PORT_THIEF", "0") or 0)
    rule = ssh_rule(vm)
    if not rule or st.get("thieves_used", 0) >= want:
        return
    st["thieves_used"] = st.get("thieves_used", 0) + 1
    p = subprocess.Popen([sys.executable, "-S", "-c", THIEF, rule["hostip"] or "0.0.0.0",
                          str(rule["hostport"])], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    p.stdout.readline()
    with open(os.path.join(HOME, "thieves"), "a") as f:
        f.write("%d\n" % p.pid)


def start_guest(st, vm):
    port_thief(st, vm)
    rotate_log(vm)
    if not vm.get("rootfs"):
        vm["guest"] = None
        return
    try:
        os.unlink(os.path.join(guest_dir(vm), "powered-off"))
    except FileNotFoundError:
        pass
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(LOCK_FD)
        os.close(r)
        os.setsid()
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        flags = 0x00020000 | 0x20000000 | 0x04000000 | 0x08000000  # NS PID UTS IPC
        if libc.unshare(flags) != 0:
            os.write(w, b"unshare: %s" % os.strerror(ctypes.get_errno()).encode())
            os._exit(1)
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            guest_init(vm, w)
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    word, _, rest = data.partition(b" ")
    if word != b"ok":
        raise Fail("The VM session was aborted (the fake guest did not boot: %s)"
                   % data.decode(errors="replace"), "E_FAIL", "PowerUp")
    init, forwarded = (int(x) for x in rest.split())
    vm["guest"] = {"pid": init, "start": proc_start(init), "forwarded": bool(forwarded)}


def port_listening(rule):
    try:
        with socket.create_connection((rule["hostip"] or "127.0.0.1", rule["hostport"]), 0.2):
            return True
    except OSError:
        return False


def stop_guest(vm):
    """Powered off means gone, as with VirtualBox: the guest's processes and
    the host port its NAT rule held (a busy host can take seconds)."""
    g = vm.get("guest")
    rule = ssh_rule(vm) if g and g.get("forwarded", True) else None
    if g and guest_alive(vm):
        os.kill(g["pid"], signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline and (guest_alive(vm) or (rule and port_listening(rule))):
            time.sleep(0.01)
    vm["guest"] = None


def set_state(vm, state):
    vm["state"], vm["state_time"] = state, now()


def cmd_startvm(st, args):
    names, kind, i = [], "gui", 0
    while i < len(args):
        if args[i] == "--type":
            kind = take("startvm", args, i, "--type")
            if kind not in ("gui", "headless", "separate", "sdl"):
                raise Syntax("startvm", "Invalid session type '%s'" % kind)
            i += 1
        elif args[i].startswith("-"):
            raise Syntax("startvm", "Unknown option: %s" % args[i])
        else:
            names.append(args[i])
        i += 1
    if not names:
        raise Syntax("startvm", "Incorrect number of parameters")
    for ref in names:
        vm = find_vm(st, ref)
        require_stopped(vm)
        for n, nic in vm["nics"].items():
            ifs = [h["name"] for h in st["hostonlyifs"]]
            if nic["type"] == "hostonly" and nic.get("hostonly") not in ifs:
                raise Fail("Failed to open a session for the virtual machine %s.\n"
                           "VBoxManage: error: Nonexistent host networking interface, "
                           "name '%s' (VERR_INTERNAL_ERROR)" % (vm["name"], nic.get("hostonly")),
                           "E_FAIL", "PowerUp")
        out('Waiting for VM "%s" to power on...' % vm["name"])
        resumed = vm["state"] in SAVED
        start_guest(st, vm)
        # A saved state comes back with its sshd already listening (a
        # restored snapshot of a running VM, a resume): the stand-in's
        # sshd, just started, is waited for.
        g = vm.get("guest") or {}
        rule = ssh_rule(vm) if resumed and g.get("forwarded") else None
        deadline = time.time() + 30
        while rule and time.time() < deadline and not port_listening(rule):
            time.sleep(0.01)
        set_state(vm, "running")
        vm["session_type"] = kind
        out('VM "%s" has been successfully started.' % vm["name"])


def controlvm_natpf(vm, args):
    """natpfN RULE / natpfN delete NAME on a running VM: the rule is added
    to (removed from) the VM's settings, as modifyvm --natpfN does."""
    n = nic_opt("controlvm", "--" + args[1], "natpf")
    if len(args) == 4 and args[2] == "delete":
        set_natpf(vm, n, "delete", args[3])
    elif len(args) == 3:
        set_natpf(vm, n, parse_rule("controlvm", args[2]))
    else:
        raise Syntax("controlvm", "Incorrect number of parameters")


def cmd_controlvm(st, args):
    actions = ("pause", "resume", "poweroff", "savestate", "acpipowerbutton")
    if len(args) >= 2 and re.fullmatch(r"natpf\d+", args[1]):
        vm = find_vm(st, args[0])
        require_running(vm)
        return controlvm_natpf(vm, args)
    if len(args) != 2:
        raise Syntax("controlvm", "Incorrect number of parameters")
    if args[1] not in actions:
        raise Syntax("controlvm", "Invalid parameter '%s'" % args[1])
    vm = find_vm(st, args[0])
    require_running(vm)
    act = args[1]
    if act == "pause":
        set_state(vm, "paused")
    elif act == "resume":
        set_state(vm, "running")
    elif act in ("poweroff", "savestate"):
        print(PROGRESS, file=sys.stderr)
        stop_guest(vm)
        set_state(vm, "poweroff" if act == "poweroff" else "saved")
    elif act == "acpipowerbutton" and vm.get("guest"):
        os.kill(vm["guest"]["pid"], signal.SIGUSR2)


def cmd_discardstate(st, args):
    if len(args) != 1:
        raise Syntax("discardstate", "Incorrect number of parameters")
    vm = find_vm(st, args[0])
    if vm["state"] not in SAVED:
        raise Fail("Machine in invalid state %s -- not saved" % vm["state"],
                   "VBOX_E_INVALID_VM_STATE", "DiscardSavedState(true)")
    set_state(vm, "poweroff")


# ---------------------------------------------------------------- snapshots

def snap_dir(vm, s):
    return os.path.join(vm["folder"], "Snapshots", s["uuid"])


def find_snap(vm, ref):
    for s in vm["snapshots"]:
        if s["name"] == ref or s["uuid"] == ref:
            return s
    raise Fail("Could not find a snapshot named '%s'" % ref, "VBOX_E_OBJECT_NOT_FOUND",
               "FindSnapshot(Bstr(a->argv[2]).raw(), pSnapshot.asOutParam())")


def copy_tree(src, dst):
    """cp -a: owners, devices (overlay whiteouts) and xattrs (opaque dirs) kept."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    run(["cp", "-a", "--", src, dst])


def snapshot_list(vm, opts):
    if not vm["snapshots"]:
        out("This machine does not have any snapshots")
        raise Fail(None)
    tree = snapshot_tree(vm)
    if "--machinereadable" in opts:
        for key, s in tree:
            out('SnapshotName%s="%s"' % (key, s["name"]), 'SnapshotUUID%s="%s"' % (key, s["uuid"]))
        cur = [(k, s) for k, s in tree if s["uuid"] == vm["current_snapshot"]]
        if cur:
            out('CurrentSnapshotName="%s"' % cur[0][1]["name"],
                'CurrentSnapshotUUID="%s"' % cur[0][1]["uuid"],
                'CurrentSnapshotNode="SnapshotName%s"' % cur[0][0])
        return
    for key, s in tree:
        depth = key.count("-")
        star = " *" if s["uuid"] == vm["current_snapshot"] else ""
        out("%sName: %s (UUID: %s)%s" % ("   " * (depth + 1), s["name"], s["uuid"], star))


def cmd_snapshot(st, args):
    if len(args) < 2:
        raise Syntax("snapshot", "Incorrect number of parameters")
    vm = find_vm(st, args[0])
    sub, rest = args[1], args[2:]
    if sub == "list":
        for o in rest:
            if o not in ("--machinereadable", "--details"):
                raise Syntax("snapshot", "Unknown option: %s" % o)
        return snapshot_list(vm, rest)
    if sub not in ("take", "restore", "delete") or not rest:
        raise Syntax("snapshot", "Invalid parameter '%s'" % sub)
    name = rest[0]
    i = 1
    while i < len(rest):
        if rest[i] == "--description":
            take("snapshot", rest, i, rest[i])
            i += 1
        elif rest[i] != "--live" or sub != "take":
            raise Syntax("snapshot", "Unknown option: %s" % rest[i])
        i += 1
    if sub == "take":
        s = {"name": name, "uuid": new_uuid(), "parent": vm["current_snapshot"],
             "online": vm["state"] in ("running", "paused")}
        copy_tree(upper_dir(vm), os.path.join(snap_dir(vm, s), "upper"))
        vm["snapshots"].append(s)
        vm["current_snapshot"] = s["uuid"]
        out(PROGRESS, "Snapshot taken. UUID: %s" % s["uuid"])
    elif sub == "restore":
        s = find_snap(vm, name)
        if vm["state"] in ("running", "paused"):
            raise Fail("Cannot restore a snapshot of the running machine '%s'" % vm["name"],
                       "VBOX_E_INVALID_VM_STATE", "RestoreSnapshot")
        copy_tree(os.path.join(snap_dir(vm, s), "upper"), upper_dir(vm))
        vm["current_snapshot"] = s["uuid"]
        set_state(vm, "saved" if s["online"] else "poweroff")
        out("Restoring snapshot '%s' (%s)" % (s["name"], s["uuid"]), PROGRESS)
    else:
        s = find_snap(vm, name)
        kids = [k for k in vm["snapshots"] if k["parent"] == s["uuid"]]
        if len(kids) > 1:
            raise Fail("Snapshot '%s' has more than one child snapshot" % s["name"],
                       "VBOX_E_INVALID_OBJECT_STATE", "DeleteSnapshot")
        if any(v.get("linked_to") == s["uuid"] for v in st["vms"].values()):
            raise Fail("Medium of snapshot '%s' is used by a linked clone" % s["name"],
                       "VBOX_E_OBJECT_IN_USE", "DeleteSnapshot")
        for k in kids:
            k["parent"] = s["parent"]
        if vm["current_snapshot"] == s["uuid"]:
            vm["current_snapshot"] = s["parent"]
        vm["snapshots"].remove(s)
        shutil.rmtree(snap_dir(vm, s), ignore_errors=True)
        out("Deleting snapshot '%s' (%s)" % (s["name"], s["uuid"]), PROGRESS)


# ---------------------------------------------------------------- clone / delete

def cmd_clonevm(st, args):
    if not args or args[0].startswith("-"):
        raise Syntax("clonevm", "Incorrect number of parameters")
    o = {"--snapshot": None, "--name": None, "--options": "", "--mode": "machine",
         "--basefolder": None, "--register": False}
    i = 1
    while i < len(args):
        a = args[i]
        if a == "--register":
            o[a] = True
        elif a in o:
            o[a] = take("clonevm", args, i, a)
            i += 1
        else:
            raise Syntax("clonevm", "Unknown option: %s" % a)
        i += 1
    opts = [x for x in o["--options"].split(",") if x]
    for x in opts:
        if x not in ("link", "keepallmacs", "keepnatmacs", "keepdisknames", "keephwuuids"):
            raise Syntax("clonevm", "Invalid clone options '%s'" % o["--options"])
    src = find_vm(st, args[0])
    snap = find_snap(src, o["--snapshot"]) if o["--snapshot"] else None
    if "link" in opts and not snap:
        raise Fail("Linked clone can only be created from a snapshot", "E_INVALIDARG",
                   "CloneTo")
    name = o["--name"] or src["name"] + " Clone"
    vm = new_vm(st, name, src["ostype"], src["memory"], src["cpus"], o["--basefolder"])
    for k in ("natpf", "sharedfolders", "rootfs"):
        vm[k] = json.loads(json.dumps(src[k]))
    vm["nics"] = {n: dict(nic, mac=new_mac()) for n, nic in src["nics"].items()}
    vm["linked_to"] = snap["uuid"] if "link" in opts else None
    upper = os.path.join(snap_dir(src, snap), "upper") if snap else upper_dir(src)
    copy_tree(upper, upper_dir(vm))
    for d in src["disks"]:
        target = os.path.join(vm["folder"], "Snapshots" if "link" in opts else "",
                              "{%s}.vmdk" % new_uuid() if "link" in opts else
                              os.path.basename(d))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").close()
        vm["disks"].append(target)
    vm["registered"] = o["--register"]
    out(PROGRESS, 'Machine has been successfully cloned as "%s"' % name)


def cmd_unregistervm(st, args):
    opts = [a for a in args[1:]]
    for a in opts:
        if a != "--delete":
            raise Syntax("unregistervm", "Unknown option: %s" % a)
    if not args:
        raise Syntax("unregistervm", "Incorrect number of parameters")
    vm = find_vm(st, args[0], any_vm=True)
    require_stopped(vm)
    snaps = {s["uuid"] for s in vm["snapshots"]}
    if "--delete" in opts and any(v.get("linked_to") in snaps for v in st["vms"].values()):
        raise Fail("Cannot delete the machine '%s': linked clones use its disks" % vm["name"],
                   "VBOX_E_OBJECT_IN_USE", "DeleteConfig")
    stop_guest(vm)
    del st["vms"][vm["uuid"]]
    if "--delete" in opts:
        print(PROGRESS, file=sys.stderr)
        shutil.rmtree(vm["folder"], ignore_errors=True)


# ---------------------------------------------------------------- shared folders, networks

def cmd_sharedfolder(st, args):
    if len(args) < 2 or args[0] not in ("add", "remove"):
        raise Syntax("sharedfolder", "Incorrect number of parameters")
    sub, vm = args[0], find_vm(st, args[1])
    o = {"--name": None, "--hostpath": None, "--auto-mount-point": None}
    flags = set()
    i = 2
    while i < len(args):
        a = args[i]
        if a in ("--transient", "--readonly", "--automount"):
            flags.add(a)
        elif a in o and (sub == "add" or a == "--name"):
            o[a] = take("sharedfolder", args, i, a)
            i += 1
        else:
            raise Syntax("sharedfolder", "Unknown option: %s" % a)
        i += 1
    if not o["--name"] or (sub == "add" and not o["--hostpath"]):
        raise Syntax("sharedfolder", "Not enough parameters")
    transient = "--transient" in flags
    if transient:
        require_running(vm)
    else:
        require_stopped(vm)
    have = [s for s in vm["sharedfolders"] if s["name"] == o["--name"]]
    if sub == "remove":
        if not have:
            raise Fail("Could not find a shared folder named '%s'." % o["--name"],
                       "VBOX_E_OBJECT_NOT_FOUND", "RemoveSharedFolder")
        vm["sharedfolders"].remove(have[0])
        return
    if have:
        raise Fail("Shared folder named '%s' already exists" % o["--name"],
                   "VBOX_E_OBJECT_IN_USE", "CreateSharedFolder")
    if not os.path.isabs(o["--hostpath"]):
        raise Fail("Shared folder path '%s' is not absolute" % o["--hostpath"],
                   "E_INVALIDARG", "CreateSharedFolder")
    vm["sharedfolders"].append({"name": o["--name"], "hostpath": o["--hostpath"],
                                "automount": "--automount" in flags, "transient": transient})


def find_hostif(st, name):
    for h in st["hostonlyifs"]:
        if h["name"] == name:
            return h
    raise Fail("Could not find interface '%s'" % name, "VBOX_E_OBJECT_NOT_FOUND",
               "FindHostNetworkInterfaceByName")


def ip_int(s):
    return int.from_bytes(socket.inet_aton(s), "big")


def allowed_ranges():
    """networks.conf's "* RANGE..." IPv4 ranges; 192.168.56.0/21 without it."""
    conf = os.environ.get("CORRAL_VBOX_NETWORKS_CONF") or "/etc/vbox/networks.conf"
    try:
        with open(conf) as f:
            text = f.read()
    except FileNotFoundError:
        text = "* 192.168.56.0/21\n"
    ranges = []
    for line in text.splitlines():
        if not line.strip().startswith("*"):
            continue
        for tok in line.strip()[1:].split():
            m = re.fullmatch(r"([\d.]+)/(\d+)", tok)
            if m and valid_ipv4(m.group(1)) and int(m.group(2)) <= 32:
                mask = (0xFFFFFFFF << (32 - int(m.group(2)))) & 0xFFFFFFFF
                ranges.append((ip_int(m.group(1)) & mask, mask))
    return ranges


def range_allowed(ip, netmask):
    """From 6.1.28 the interface's network must lie in an allowed range."""
    if version() < (6, 1, 28):
        return True
    mask = ip_int(netmask)
    net = ip_int(ip) & mask
    return any(net & rmask == rnet and mask & rmask == rmask for rnet, rmask in allowed_ranges())


def cmd_hostonlyif(st, args):
    if not args:
        raise Syntax("hostonlyif", "Incorrect number of parameters")
    sub = args[0]
    if sub == "create" and len(args) == 1:
        used = {h["name"] for h in st["hostonlyifs"]}
        n = next(i for i in range(256) if "vboxnet%d" % i not in used)
        st["hostonlyifs"].append({"name": "vboxnet%d" % n, "ip": "192.168.%d.1" % (56 + n),
                                  "mask": "255.255.255.0", "guid": new_uuid(),
                                  "mac": "0a:00:27:00:00:%02x" % n})
        out(PROGRESS, "Interface 'vboxnet%d' was successfully created" % n)
    elif sub == "remove" and len(args) == 2:
        st["hostonlyifs"].remove(find_hostif(st, args[1]))
    elif sub == "ipconfig" and len(args) >= 2:
        h = find_hostif(st, args[1])
        o = {}
        i = 2
        while i < len(args):
            if args[i] not in ("--ip", "--netmask"):
                raise Syntax("hostonlyif", "Unknown option: %s" % args[i])
            o[args[i]] = take("hostonlyif", args, i, args[i])
            if not valid_ipv4(o[args[i]]):
                raise Syntax("hostonlyif", "Invalid address '%s'" % o[args[i]])
            i += 2
        if "--ip" not in o:
            raise Syntax("hostonlyif", "Missing --ip")
        if not range_allowed(o["--ip"], o.get("--netmask", "255.255.255.0")):
            raise Fail(None, "E_ACCESSDENIED", "EnableStaticIPConfig(Bstr(pszIp).raw(), "
                       "Bstr(pszNetmask).raw())", bare=True)
        h["ip"], h["mask"] = o["--ip"], o.get("--netmask", "255.255.255.0")
    else:
        raise Syntax("hostonlyif", "Invalid parameter '%s'" % sub)


def cmd_guestproperty(st, args):
    if len(args) < 3 or args[0] != "get":
        raise Syntax("guestproperty", "Incorrect number of parameters")
    find_vm(st, args[1])
    out("No value set!")


# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- export

OVF_HEAD = ('<?xml version="1.0"?>\n<Envelope ovf:version="1.0" xml:lang="en-US" '
            'xmlns="%(ovf)s" xmlns:ovf="%(ovf)s" xmlns:rasd="%(rasd)s" xmlns:vbox="%(vbox)s">\n')


def ovf_text(vm, hrefs):
    """An OVF 1.0 envelope as VirtualBox exports it, reduced to what read_ovf reads."""
    refs = "".join('    <File ovf:id="file%d" ovf:href="%s"/>\n' % (i + 1, h)
                   for i, h in enumerate(hrefs))
    disks = "".join('    <Disk ovf:diskId="vmdisk%d" ovf:fileRef="file%d" ovf:format="http://'
                    'www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>\n'
                    % (i + 1, i + 1) for i in range(len(hrefs)))
    items = ('      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3'
             '</rasd:ResourceType><rasd:VirtualQuantity>%d</rasd:VirtualQuantity></Item>\n'
             '      <Item><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4'
             '</rasd:ResourceType><rasd:VirtualQuantity>%d</rasd:VirtualQuantity></Item>\n'
             % (int(vm["cpus"]), int(vm["memory"])))
    items += "".join('      <Item><rasd:HostResource>/disk/vmdisk%d</rasd:HostResource>'
                     '<rasd:InstanceID>%d</rasd:InstanceID><rasd:ResourceType>17'
                     '</rasd:ResourceType></Item>\n' % (i + 1, 10 + i)
                     for i in range(len(hrefs)))
    return (OVF_HEAD % NS + "  <References>\n" + refs + "  </References>\n"
            "  <DiskSection>\n" + disks + "  </DiskSection>\n"
            '  <VirtualSystem ovf:id="%s">\n    <OperatingSystemSection ovf:id="96">'
            "<vbox:OSType>%s</vbox:OSType></OperatingSystemSection>\n"
            "    <VirtualHardwareSection>\n%s    </VirtualHardwareSection>\n"
            "  </VirtualSystem>\n</Envelope>\n" % (vm["name"], vm["ostype"], items))


def export_disks(st, vm):
    """The disks as export flattens them: a linked clone's come from the VM
    whose snapshot it was cloned from (the fake's clone disks are empty
    placeholders)."""
    if vm.get("linked_to"):
        for src in st["vms"].values():
            if any(s["uuid"] == vm["linked_to"] for s in src["snapshots"]):
                return src["disks"]
    return vm["disks"]


def cmd_export(st, args):
    """export VM --output|-o FILE.ovf [--ovf10|--ovf20|--manifest|--options ...]:
    the OVF, NAME-disk00N.vmdk beside it (copies: real VirtualBox writes
    streamOptimized VMDKs of the flattened chain) and a NAME.mf manifest."""
    import hashlib
    if not args or args[0].startswith("-"):
        raise Syntax("export", "Incorrect number of parameters")
    output, i = None, 1
    while i < len(args):
        a = args[i]
        if a in ("--output", "-o"):
            output = take("export", args, i, a)
            i += 1
        elif a == "--options":
            i += 1
        elif a not in ("--ovf09", "--ovf10", "--ovf20", "--manifest"):
            raise Syntax("export", "Unknown option: %s" % a)
        i += 1
    if not output:
        raise Syntax("export", "Missing --output argument")
    vm = find_vm(st, args[0])
    require_stopped(vm)
    base = os.path.splitext(os.path.abspath(output))[0]
    hrefs, sums = [], []
    for n, d in enumerate(export_disks(st, vm)):
        href = "%s-disk%03d.vmdk" % (os.path.basename(base), n + 1)
        shutil.copyfile(d, os.path.join(os.path.dirname(base), href))
        hrefs.append(href)
    with open(os.path.abspath(output), "w") as f:
        f.write(ovf_text(vm, hrefs))
    for name in [os.path.basename(output)] + hrefs:
        with open(os.path.join(os.path.dirname(base), name), "rb") as f:
            sums.append("SHA256(%s)= %s" % (name, hashlib.sha256(f.read()).hexdigest()))
    with open(base + ".mf", "w") as f:
        f.write("\n".join(sums) + "\n")
    out(PROGRESS, 'Successfully exported 1 machine(s).')


COMMANDS = {
    "list": cmd_list, "showvminfo": cmd_showvminfo, "import": cmd_import,
    "modifyvm": cmd_modifyvm, "startvm": cmd_startvm, "controlvm": cmd_controlvm,
    "discardstate": cmd_discardstate, "snapshot": cmd_snapshot, "clonevm": cmd_clonevm,
    "unregistervm": cmd_unregistervm, "sharedfolder": cmd_sharedfolder,
    "hostonlyif": cmd_hostonlyif, "guestproperty": cmd_guestproperty,
    "export": cmd_export,
}


def report_fail(e):
    for line in e.pre:
        print(line, file=sys.stderr)
    if e.bare:
        print("VBoxManage: error: Code %s (0x%08x) - %s (extended info not available)"
              % (e.code, CODES[e.code], BARE[e.code]), file=sys.stderr)
    elif e.msg is None:
        return
    for line in e.msg if isinstance(e.msg, list) else [e.msg] if e.msg else []:
        print("VBoxManage: error: %s" % line, file=sys.stderr)
    if e.code and not e.bare:
        print("VBoxManage: error: Details: code %s (0x%08x), component MachineWrap, "
              "interface IMachine, callee nsISupports" % (e.code, CODES.get(e.code, 0x80004005)),
              file=sys.stderr)
    if e.context:
        print('VBoxManage: error: Context: "%s" at line 1 of file VBoxManageFake.cpp'
              % e.context, file=sys.stderr)


def main(argv):
    global LOCK_FD
    if not HOME:
        print("VBoxManage: error: VBOX_FAKE_HOME is not set (this is the test fake)",
              file=sys.stderr)
        return 3
    os.makedirs(HOME, exist_ok=True)
    LOCK_FD = os.open(os.path.join(HOME, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(LOCK_FD, fcntl.LOCK_EX)
    with open(os.path.join(HOME, "calls.log"), "a") as f:
        f.write(shlex.join(argv) + "\n")
    if argv in (["--version"], ["-v"], ["-V"]):
        if os.environ.get("VBOX_FAKE_WARNING"):
            first, *rest = os.environ["VBOX_FAKE_WARNING"].split("\n")
            out("WARNING: %s" % first, *[("         " + x) if x else "" for x in rest])
        out(VERSION)
        return 0
    if not argv or argv[0] not in COMMANDS:
        print("Usage: VBoxManage <command> [options]", file=sys.stderr)
        print("VBoxManage: error: Invalid command '%s'" % (argv[0] if argv else ""),
              file=sys.stderr)
        return 2
    st = load()
    refresh(st)
    try:
        COMMANDS[argv[0]](st, argv[1:])
    except Syntax as e:
        print("Usage:\n\n%s\n" % USAGE[e.cmd], file=sys.stderr)
        print("VBoxManage: error: %s" % e.msg, file=sys.stderr)
        return 2
    except Fail as e:
        save(st)  # what happened before the failure (a refreshed state) stays
        report_fail(e)
        return e.exit
    save(st)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
