#!/usr/bin/env bash
# A two-machine topology on the incus provider (a private LXD daemon,
# tests/fakes/lxd-env.sh): corral/debian-12 (systemd, sudo, python) as
# web and db on an envfile network, brought up in parallel, then an
# envfile-level Ansible step over both (become, group vars, the pinned
# host keys), and web reaching db on the private network. Destroy leaves
# no instance, image or bridge.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
command -v ansible-playbook >/dev/null || { echo "1..0 # SKIP no ansible-playbook"; exit 0; }
lxd_start
"$CORRAL" box add "$(dirname "$(test_box debian-12)")/catalog.json" >/dev/null 2>&1
api() { curl -s --unix-socket "$LXD_SOCKET" "http://lxd$1"; }
NET=10.217.${LXD_SUBNET#10.219.}
P=${NET%.0/24}
mkdir -p "$T/topo" && cd "$T/topo"
cat >corral.yaml <<YAML
version: 1
networks:
  back: { subnet: $NET }
defaults:
  box: corral/debian-12
  provider: incus
  memory: 256M
  provider_options: { incus: { network: $LXD_BRIDGE } }
machines:
  web: { networks: [{ network: back, ip: $P.10 }] }
  db: { networks: [{ network: back, ip: $P.20 }] }
provision:
  - ansible:
      playbook: site.yml
      groups:
        front: [web]
        back: [db]
        "back:vars": { role: db }
        "front:vars": { role: web }
YAML
cat >site.yml <<'YAML'
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - copy: { dest: /etc/corral-role, content: "{{ role }}\n" }
YAML
out=$("$CORRAL" up --parallel 2 2>&1)
rc=$?
check "both machines come up and the ansible step runs" test "$rc" = 0 ||
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
expect_out "ansible ran as root with web's group vars" 0 "web" "$CORRAL" ssh web -c 'cat /etc/corral-role'
expect_out "and db's" 0 "db" "$CORRAL" ssh db -c 'cat /etc/corral-role'
expect_out "web reaches db's sshd on the private network" 0 "SSHok" "$CORRAL" ssh web -c "exec 3<>/dev/tcp/$P.20/22 && head -c 3 <&3 && echo ok"
expect_out "the hostname is the machine's" 0 "db" "$CORRAL" ssh db -c 'hostname; sudo -n true'
expect_out "destroy" 0 "" "$CORRAL" destroy -f
check "no instance is left" test "$(api /1.0/instances | jq '.metadata | length')" = 0
check "no image is left" test "$(api /1.0/images | jq '.metadata | length')" = 0
# (managed ones only: the host's interfaces, another test's too, are listed)
check "no corral bridge is left" test "$(api '/1.0/networks?recursion=1' | jq '[.metadata[] | select(.managed and (.name | test("^crl[0-9a-f]{12}$")))] | length')" = 0
