/* The command table: dispatch, help (cmd/help.c), the man page's COMMANDS
 * section and completion all come from it. Names starting with `_` are
 * hidden: internal helpers, left out of help, the man page and completion. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define CORRAL_VERSION "0.1.0"

static const struct command table[] = {
	{"init", cmd_init, "[--force] [BOX]", "write a commented corral.yaml here",
	 "  --force   overwrite an existing corral.yaml\n"},
	{"import", cmd_import, "[VAGRANTFILE] [-o FILE] [--force]",
	 "write corral.yaml from a Vagrantfile, without running Ruby",
	 "  -o, --output FILE   write FILE (default: corral.yaml next to the Vagrantfile; - for stdout)\n"
	 "  --force             overwrite an existing output file\n"
	 "  What cannot be translated becomes a `# not imported (Vagrantfile line N)` comment\n"
	 "  and a line of the summary on stderr. Exit 0: written; 1: the output exists;\n"
	 "  2: the Vagrantfile cannot be read or parsed (file:line:col).\n"},
	{"validate", cmd_validate, "", "check the envfile; every error with file:line:col", ""},
	{"lock", cmd_lock, "[--update [NAME...]]",
	 "write corral.lock: the box version and digest each machine resolves to",
	 "  corral.lock (beside the envfile, meant to be committed) pins each machine's box:\n"
	 "  name, version, provider, architecture, URL, digest (sha256:HEX), signer. `up`\n"
	 "  writes it too and then boots new machines on exactly those boxes.\n"
	 "  Without --update: adds the machines the lock lacks or whose box, box_version or\n"
	 "  box_url changed; the others keep their pins.\n"
	 "  --update [NAME...]   resolve again (newest fitting box_version) for those machines\n"
	 "                       (all without names), fetching the box when missing\n"},
	{"status", cmd_status, "[NAME...]", "show the state of the envfile's machines",
	 "  --json    one JSON object per machine, as an array\n"
	 "  -v        (global) also a running container's init, and the /etc/rc2.d\n"
	 "            services corral's built-in init started\n"},
	{"provision", cmd_provision, "[NAME...] [--provision-with STEP,...] [--report FMT:FILE]",
	 "run provisioning steps on running machines now",
	 "  --provision-with STEP,...   only these steps (by name), `run: never` ones included\n"
	 "  --report junit:FILE|json:FILE   each step as a test case (repeatable)\n"
	 "  --json                events as JSON lines, then the summary (docs/events.md)\n"},
	{"box", cmd_box, "add|search|list|remove|prune|outdated|update|verify|sign|publish ...",
	 "manage the box store ($CORRAL_HOME/boxes, Vagrant's layout)",
	 "  add [--name NAME] NAME|URL|PATH   a .box file or URL (needs a name; version 0),\n"
	 "      a cloud image (qcow2, raw, .xz/.gz/.zst, tar of disk.raw; named local/FILE\n"
	 "      without --name), a catalog .json (path or URL), or org/name from $CORRAL_BOX_SERVER/org/name\n"
	 "      (default https://vagrantcloud.com/org/name); also Vagrant's `add NAME URL`\n"
	 "        --box-version C   constraint: = != > < >= <= ~>, comma list (newest fitting)\n"
	 "        --provider P  --architecture A (default: this host's, then unknown)\n"
	 "        --checksum TYPE:HEX   for a .box   --force  replace   --insecure  no TLS checks\n"
	 "        --signature B64   the .box's Ed25519 signature (catalogs carry `signature`)\n"
	 "        --checksum-file URL   take the digest from the publisher's SHA256SUMS,\n"
	 "                          SHA512SUMS or CHECKSUM file (the entry for the file's name)\n"
	 "        --checksum-signature URL   its detached OpenPGP signature (.gpg/.asc/.sign);\n"
	 "                          a clearsigned checksum file needs none. Keys: gpgv, with\n"
	 "                          $CORRAL_HOME/trusted-keys/*.asc|.gpg and corral's shipped keys\n"
	 "      or a distribution's short name (debian/12, ubuntu/24.04, ...: see search)\n"
	 "  search [TERM]        short names of distributions' cloud images (--json); the\n"
	 "                       publisher's checksums and signature key come with each\n"
	 "  list                 every box: name, version, provider, architecture (--json);\n"
	 "                       also Vagrant's (~/.vagrant.d/boxes), which up uses as they are\n"
	 "  remove NAME [--box-version V] [--provider P] [--architecture A] [--all] [--force]\n"
	 "                       refuses a box a machine uses unless --force\n"
	 "  prune [--dry-run]    remove all but the newest version of each box, never one in use\n"
	 "  outdated [NAME]      compare boxes added from a catalog with it (--json)\n"
	 "  update [NAME] [--provider P]   add the newest version from the catalog\n"
	 "  verify               re-hash every box's files; exit 1 on any change\n"
	 "  sign KEY BOXFILE     print the base64 Ed25519 signature of BOXFILE\n"
	 "  publish DIR BOX... --name ORG/NAME --version V [--provider P] [--architecture A]\n"
	 "          [--key KEY] [--base-url URL]\n"
	 "                       copy the boxes into DIR and add them to the catalog DIR/ORG/NAME\n"
	 "                       (made or updated; other versions kept), with their sha256 and,\n"
	 "                       given a PEM Ed25519 KEY, their signature: serve DIR with any\n"
	 "                       static web server and set CORRAL_BOX_SERVER to its URL\n"},
	{"up", cmd_up,
	 "[NAME...] [--provider P] [--provision|--no-provision] [--provision-with STEP,...] "
	 "[--parallel N] [--destroy-on-error] [--locked] [--report FMT:FILE]",
	 "create and start machines, wait for SSH, provision",
	 "  --provider P          provider for machines not yet created (container, kvm, ...)\n"
	 "  --provision           run every provisioning step (not only the first time)\n"
	 "  --no-provision        run no provisioning step\n"
	 "  --provision-with STEP,...   run only these steps (by name), `run: never` ones included\n"
	 "  --parallel N          at most N machines booting/provisioning at once (default: all)\n"
	 "  --destroy-on-error    destroy a machine this up created when its up fails\n"
	 "  --locked              fail unless corral.lock exists and matches the envfile (CI)\n"
	 "  --report junit:FILE|json:FILE   each boot and step as a test case, JUnit XML or JSON\n"
	 "                        (repeatable)\n"
	 "  --json                events as JSON lines as they happen, then the summary (machine,\n"
	 "                        state, seconds, failed step) as one line (docs/events.md)\n"},
	{"halt", cmd_halt, "[-f] [NAME...]", "stop machines (gracefully, then by force)",
	 "  -f, --force   stop at once, without waiting for a graceful shutdown\n"},
	{"reload", cmd_reload,
	 "[NAME...] [--provision|--no-provision] [--provision-with STEP,...] [--parallel N]",
	 "halt, then up: restarts machines with the envfile's current settings",
	 "  --provision-with STEP,...   run only these steps (by name)\n"
	 "  --parallel N          at most N machines at once (default: all)\n"},
	{"destroy", cmd_destroy, "[-f] [NAME...]",
	 "remove machines and everything they hold on the host",
	 "  -f, --force   no confirmation question\n"},
	{"reset", cmd_reset, "[NAME...] [--report FMT:FILE]",
	 "return machines to their state right after their first complete provisioning",
	 "  The `provisioned` checkpoint is taken by `up` once a machine's first\n"
	 "  provisioning completes. container: its upper layer's changes since then are\n"
	 "  discarded and it starts again (no full boot); kvm, virtualbox: the snapshot\n"
	 "  `provisioned` is restored (memory too when taken running). Probes are waited for.\n"
	 "  --report junit:FILE|json:FILE   each reset and probe as a test case\n"},
	{"snapshot", cmd_snapshot, "save|restore|delete [MACHINE] NAME | list [MACHINE]",
	 "save, restore, delete or list machine snapshots (no MACHINE: every machine)",
	 "  save [MACHINE] NAME      a running machine: disk, memory and devices; stopped: disk\n"
	 "                           (container: its file system only, frozen while copied)\n"
	 "  restore [MACHINE] NAME   back to the snapshot (a running machine keeps running;\n"
	 "                           container: booted again)\n"
	 "  delete [MACHINE] NAME    remove it\n"
	 "  list [MACHINE]           the snapshots of each machine\n"},
	{"package", cmd_package, "[NAME] [-o FILE]",
	 "make a .box of a stopped machine, for its provider, with FILE.sha256",
	 "  -o, --output FILE   the box to write (default: NAME.box beside the envfile)\n"
	 "  container: the box's tree with the machine's changes (deleted files stay deleted);\n"
	 "  kvm: the disk flattened and compressed; virtualbox: VBoxManage export (OVF).\n"
	 "  The machine's host keys, authorized_keys, hostname, hosts and resolv.conf are\n"
	 "  left out or the box's own. Written to a temporary file, renamed when complete.\n"
	 "  --json    the box's path, provider and sha256 as JSON\n"},
	{"suspend", cmd_suspend, "[NAME...]", "save running machines' memory to disk and stop them",
	 "  container: its processes are frozen where they are (no memory written)\n"},
	{"resume", cmd_resume, "[NAME...]", "start suspended machines where they left off", ""},
	{"global-status", cmd_global_status, "[--prune]",
	 "every machine corral created, across envfiles",
	 "  --prune   forget machines whose directory is gone\n"
	 "  --json    as a JSON array\n"},
	{"port", cmd_port, "[NAME] [--watch]", "forwarded ports of a machine (guest => host)",
	 "  --json    as a JSON array\n"
	 "  --watch   follow what `ports: auto` forwards and removes, one line each as it\n"
	 "            happens (with --json: `port` event lines), until the machine stops\n"},
	{"__init", cmd_provider_entry, "KEY=VALUE...", "(the container runtime's init)", ""},
	{"__portfwd", cmd_provider_entry, "GUEST_IP MAX_CONNECTIONS FD:PORT...",
	 "(the container port forwarder)", ""},
	{"__kvm-ports", cmd_provider_entry, "KEY=VALUE...", "(the kvm ports: auto watcher)", ""},
	{"__vbox-ports", cmd_provider_entry, "KEY=VALUE...", "(the virtualbox ports: auto watcher)",
	 ""},
	{"__incus-ports", cmd_provider_entry, "KEY=VALUE...", "(the incus ports: auto watcher)", ""},
	{"__ctns", cmd_provider_entry, "OP ARGS...",
	 "(the container provider's work in the user's id map, without root)", ""},
	{"__ctrelay", cmd_provider_entry, "", "(the container's private networks, without root)", ""},
	{"ssh", cmd_ssh, "[NAME] [-c CMD] [--reset-host-key] [-- SSH_ARGS...]",
	 "log in to a machine with OpenSSH, or run CMD there",
	 "  -c, --command CMD   run CMD (a shell command line) instead of a login shell;\n"
	 "                      its exit status is corral's\n"
	 "  --reset-host-key    forget the pinned host key (the machine was re-created)\n"
	 "                      and pin the one it has now; alone, does only that\n"
	 "  -- SSH_ARGS         passed to ssh as they are, e.g. -- -L 8080:localhost:80\n"},
	{"rsync", cmd_rsync, "[NAME...]",
	 "copy the rsync synced folders to running machines again, as `up` does", ""},
	{"ssh-config", cmd_ssh_config, "[NAME...]",
	 "print OpenSSH Host blocks for machines (ssh -F, scp, rsync, Ansible)", ""},
	{"completion", cmd_completion, "bash|zsh", "print a shell completion script", ""},
	{"__complete", cmd_completion, "commands|machines|boxes", "(for completion scripts)", ""},
	{"help", cmd_help, "[COMMAND]", "show help for corral or one command", ""},
	{"__man", cmd_man, "synopsis|options|commands", "(Markdown for the man page)", ""},
	{"version", cmd_version, "", "print corral's version", ""},
};

const struct command *commands(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

bool command_hidden(const struct command *cmd) { return cmd->name[0] == '_'; }

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

int cmd_version(struct ctx *c)
{
	(void)c;
	printf("corral %s\n", CORRAL_VERSION);
	return EXIT_OK;
}
