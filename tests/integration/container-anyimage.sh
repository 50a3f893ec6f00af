#!/usr/bin/env bash
# SSH into any root tree without changing it: trees with no sshd of their
# own get the host's sshd (read-only at /.corral/sshd, through its own
# loader: no glibc needed in the guest) and the users they lack, added in
# the machine's upper layer. A busybox-only tree (no sshd, no libc, no
# bash, no vagrant user), a Debian tree without sshd and an "OCI image"
# box run the shell, file and ansible provisioners unmodified; `command:
# image` runs the image's entrypoint/cmd (busybox httpd) with its Env,
# WorkingDir and User, restarted when it dies, reached from a machine that
# depends on it. (Images pulled from a registry, end to end, with ansible's
# python3 error and a forwarded port: oci-pull.sh.) Host keys checked strictly; the guest can
# neither change the mounted sshd nor reach the host through its paths.
. "$(dirname "$0")/../lib.sh"

# A busybox-only tree: the tiny box without sshd, its libraries and users.
bb=$T/bb
tiny_tree "$bb"
(cd "$bb/rootfs" && rm -rf usr/sbin/sshd usr/bin/ssh-keygen usr/lib/openssh lib lib64 \
	usr/lib/x86_64-linux-gnu etc/ssh/sshd_config etc/shadow home/vagrant)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
	>"$bb/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$bb/rootfs/etc/group"
check "the busybox tree has no sshd, no shared object, no bash, no vagrant user" \
	bash -c "[ ! -e '$bb/rootfs/usr/sbin/sshd' ] && [ -z \"\$(find '$bb/rootfs' -name '*.so*')\" ] &&
		! find '$bb/rootfs' -name bash | grep -q . && ! grep -q vagrant '$bb/rootfs/etc/passwd'"
tar -C "$bb" -cf "$T/bb.box" metadata.json rootfs

# The same as an OCI image box whose process is busybox httpd as nobody.
web=$T/web
cp -a "$bb" "$web"
mkdir -p "$web/rootfs/srv/www"
echo "hello from the image" >"$web/rootfs/srv/www/index.html"
cat >"$web/metadata.json" <<'JSON'
{"provider":"container","format":"oci","architecture":"amd64",
 "oci":{"env":["GREETING=hi there","PATH=/bin:/usr/bin:/sbin:/usr/sbin"],"working_dir":"/srv/www",
  "user":"nobody","entrypoint":["/bin/sh","-c","echo \"$GREETING|$(pwd)|$(id -un)\" >/tmp/svc.txt; exec \"$0\" \"$@\""],
  "cmd":["httpd","-f","-v","-p","8080"]}}
JSON
tar -C "$web" -cf "$T/web.box" metadata.json rootfs

# No shell at all (a "distroless" image).
cp -a "$bb" "$T/nosh" && rm "$T/nosh/rootfs/bin/sh"
tar -C "$T/nosh" -cf "$T/nosh.box" metadata.json rootfs

# A Debian tree without openssh-server (python3 and sudo kept), streamed
# from the cached box without unpacking it.
deb=$(test_box debian-12-sysv)
gzip -dc "$deb" | tar --delete rootfs/usr/sbin/sshd >"$T/deb.box"

for b in bb web deb nosh; do
	expect_out "box add test/$b" 0 "added box test/$b" "$CORRAL" box add --name "test/$b" "$T/$b.box"
done

E=$T/env
mkdir -p "$E"
echo "copied by sftp" >"$E/note.txt"
cat >"$E/site.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - copy: { content: "ansible was here\n", dest: /tmp/ansible.txt }
YAML
cat >"$E/corral.yaml" <<'YAML'
version: 1
defaults: { provider: container, ssh: { boot_timeout: 60s } }
networks:
  svc: { subnet: 10.251.77.0/24 }
machines:
  bb:
    box: test/bb
    provision:
      - shell: { inline: "echo user=$(id -un) shell=$SHELL", privileged: false }
      - file: { source: note.txt, destination: /tmp/note.txt }
      - shell: { name: priv, inline: "true", run: never }
  bbroot:
    box: test/bb
    ssh: { user: root }
    provision:
      - shell: { inline: "echo root=$(id -u)" }
  deb:
    box: test/deb
    provision:
      - shell: { inline: "echo deb=$(whoami)" }
      - file: { source: note.txt, destination: /tmp/note.txt }
      - ansible: { playbook: site.yml }
  web:
    box: test/web
    ssh: { user: root }
    networks: [{ network: svc, ip: 10.251.77.10 }]
    ports: [{ guest: 8080 }]
    provider_options: { container: { command: image } }
  client:
    box: test/bb
    depends_on: [web]
    networks: [{ network: svc }]
YAML
on_exit '"$CORRAL" -C "$E" destroy -f >/dev/null 2>&1'
run_ok "up of every tree, provisioned" "$CORRAL" -C "$E" up
g() { "$CORRAL" -C "$E" ssh "$1" -c "$2" 2>&1; }
M=$E/.corral/machines

expect_out "busybox: shell as the added user, /bin/sh" 0 "user=vagrant shell=/bin/sh" \
	printf '%s\n' "$out"
expect_out "busybox: the file provisioner (internal-sftp)" 0 "copied by sftp" g bb 'cat /tmp/note.txt'
expect_out "busybox: vagrant and sshd added to passwd" 0 "2" \
	g bb 'grep -c -e "^vagrant:" -e "^sshd:" /etc/passwd'
check "busybox: the box's passwd is unchanged" \
	bash -c "! grep -q vagrant \"\$(jq -r .lower '$M/bb/state.json')/etc/passwd\""
expect_out "busybox: privileged shell as root" 0 "root=0" printf '%s\n' "$out"
expect_out "busybox: a privileged step without sudo says so" 1 \
	"the guest has no sudo to run this privileged step" "$CORRAL" -C "$E" provision bb --provision-with priv

N=$T/nosh-env
mkdir -p "$N"
printf 'version: 1\nmachines:\n  n: { box: test/nosh, provider: container }\n' >"$N/corral.yaml"
on_exit '"$CORRAL" -C "$N" destroy -f >/dev/null 2>&1'
expect_out "an image without /bin/sh: up says so" 1 "the guest has no /bin/sh" "$CORRAL" -C "$N" up

expect_out "debian without sshd: sudo works" 0 "deb=root" printf '%s\n' "$out"
expect_out "debian without sshd: no sshd in the tree" 0 "none" \
	g deb 'test -e /usr/sbin/sshd || echo none'
expect_out "debian: file provisioner" 0 "copied by sftp" g deb 'cat /tmp/note.txt'
expect_out "debian: the ansible play ran" 0 "ansible was here" g deb 'cat /tmp/ansible.txt'

# Strict host key checking against the key corral pinned, with plain ssh.
ip=$(jq -r .ip "$M/bb/state.json")
expect_out "host key pinned: plain ssh with StrictHostKeyChecking=yes" 0 "pinned-ok" \
	ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile="$M/bb/known_hosts" -o HostKeyAlias=corral-machine \
	-o IdentitiesOnly=yes -i "$M/bb/id_ed25519" \
	"vagrant@$ip" echo pinned-ok

# The host's sshd in the guest: read-only, locked, out of the guest's reach.
bundle=$(find "$T/home/cache/sshd" -mindepth 1 -maxdepth 1 -type d | head -n 1)
before=$(cd "$bundle" && find . -type f -exec sha256sum {} + | sort)
expect_out "guest root cannot write the sshd" 1 "Read-only" g bbroot 'touch /.corral/sshd/sshd'
expect_out "guest root cannot remount it writable" 1 "" \
	g bbroot 'mount -o remount,rw /.corral/sshd 2>&1 || mount -o remount,bind,rw /.corral/sshd'
expect_out "guest root cannot unmount it" 1 "" g bbroot 'umount /.corral/sshd'
# /.corral replaced by a link to /etc while the machine is down (as guest
# root could leave it in its layer): the next up mounts inside the guest.
expect_out "halt bbroot" 0 "" "$CORRAL" -C "$E" halt bbroot
rm -rf "$M/bbroot/upper/.corral" && ln -s /etc "$M/bbroot/upper/.corral"
expect_out "up again with /.corral a link" 0 "" "$CORRAL" -C "$E" up bbroot --no-provision
expect_out "ssh after the link" 0 "sshd_config" g bbroot 'ls /etc/sshd'
check "the host's sshd files unchanged" [ "$before" = "$(cd "$bundle" && find . -type f -exec sha256sum {} + | sort)" ]
check "nothing made on the host through the link" [ ! -e /etc/sshd ]

# command: image
port=127.0.0.1:$("$CORRAL" -C "$E" port web 2>/dev/null | sed -n 's/.*=> \([0-9]*\) (host.*/\1/p')
expect_out "image: reached from a machine that depends on it" 0 "hello from the image" \
	g client 'wget -qO- http://10.251.77.10:8080/'
expect_out "image: Env, WorkingDir and User" 0 "hi there|/srv/www|nobody" g web 'cat /tmp/svc.txt'
expect_out "image: its output is in the console log" 0 "response:200" cat "$M/web/console.log"
g web 'kill $(pidof httpd)' >/dev/null
served() { for _ in $(seq 50); do curl -sf --max-time 2 "http://$port/" && return 0; sleep 0.2; done; return 1; }
expect_out "image: restarted after it died" 0 "hello from the image" served
expect_out "image: its exit noted in the console log" 0 "the image's command exited" cat "$M/web/console.log"

expect_out "destroy" 0 "destroyed" "$CORRAL" -C "$E" destroy -f
