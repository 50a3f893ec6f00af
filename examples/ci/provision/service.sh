#!/bin/sh
# service.sh PORT ROLE: one busybox httpd on PORT as an /etc/rc2.d service
# (started now, and by the init at every boot and reset):
#   db   serves /items, the "database"
#   app  /cgi-bin/items: counts and lists db's items; /health
#   web  /cgi-bin/items: app's answer, signed by web (the front end)
set -eu
port=$1 role=$2
www=/srv/$role
mkdir -p "$www/cgi-bin" /etc/rc2.d
case $role in
db)
	printf 'gadget 3\ngizmo 7\nwidget 12\n' >"$www/items"
	;;
app)
	echo ok >"$www/health"
	cat >"$www/cgi-bin/items" <<'CGI'
#!/bin/sh
items=$(wget -qO- http://10.20.7.10:5000/items) || { echo "Status: 502"; echo; exit 0; }
echo "Content-Type: text/plain"
echo
echo "app: $(echo "$items" | wc -l) items from db: $(echo "$items" | tr '\n' ',' | sed 's/,$//')"
CGI
	;;
web)
	cat >"$www/cgi-bin/items" <<'CGI'
#!/bin/sh
answer=$(wget -qO- http://10.20.7.20:8000/cgi-bin/items) || { echo "Status: 502"; echo; exit 0; }
echo "Content-Type: text/plain"
echo
echo "web -> $answer"
CGI
	;;
esac
[ ! -e "$www/cgi-bin/items" ] || chmod 755 "$www/cgi-bin/items"
printf '#!/bin/sh\nexec httpd -p %s -h %s\n' "$port" "$www" >/etc/rc2.d/S50"$role"
chmod 755 /etc/rc2.d/S50"$role"
/etc/rc2.d/S50"$role"
