# bash completion for gvsadm (and gvsadm installed as ipvsadm).
# Options from ipvsadm's help text; virtual services and real servers from
# the running gvsd (gvsadm -S -n), so nothing is completed from a stale
# list. Installed as /usr/share/bash-completion/completions/gvsadm and
# .../ipvsadm.

_gvsadm_rules() {
	# $1: the command (gvsadm or ipvsadm); prints the -S -n lines.
	"$1" -S -n 2>/dev/null
}

_gvsadm() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	local prog=${words[0]}

	case $prev in
	-t | --tcp-service | -u | --udp-service | --sctp-service | -f | --fwmark-service)
		local flag=$prev
		case $flag in
		--tcp-service) flag=-t ;;
		--udp-service) flag=-u ;;
		--fwmark-service) flag=-f ;;
		esac
		local svcs
		svcs=$(_gvsadm_rules "$prog" | awk -v f="$flag" '$1 == "-A" && $2 == f { print $3 }')
		COMPREPLY=($(compgen -W "$svcs" -- "$cur"))
		return
		;;
	-r | --real-server)
		# The servers of the service named earlier on the line.
		local i svc=""
		for ((i = 1; i < cword; i++)); do
			case ${words[i]} in
			-t | --tcp-service | -u | --udp-service | --sctp-service | -f | --fwmark-service) svc=${words[i + 1]} ;;
			esac
		done
		local servers
		servers=$(_gvsadm_rules "$prog" | awk -v s="$svc" '$1 == "-a" && (s == "" || $3 == s) { for (i = 4; i < NF; i++) if ($i == "-r") print $(i + 1) }' | sort -u)
		COMPREPLY=($(compgen -W "$servers" -- "$cur"))
		return
		;;
	-s | --scheduler)
		COMPREPLY=($(compgen -W "rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos" -- "$cur"))
		return
		;;
	--start-daemon | --stop-daemon)
		COMPREPLY=($(compgen -W "master backup" -- "$cur"))
		return
		;;
	--mcast-interface | --ifname | -F)
		COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
		return
		;;
	--socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--tun-type)
		COMPREPLY=($(compgen -W "ipip gue gre" -- "$cur"))
		return
		;;
	-p | --persistent | -M | --netmask | -w | --weight | -x | --u-threshold | -y | --l-threshold | -z | --laddr | -b | --sched-flags | --pe | --tun-port | --syncid | --sync-maxlen | --mcast-group | --mcast-port | --mcast-ttl)
		return
		;;
	esac

	if [[ $cur == -* || -z $cur ]]; then
		local opts="-A -E -D -C -R -S -a -e -d -L -l -Z -P -Q -G -h -v
			--add-service --edit-service --delete-service --clear --restore --save
			--add-server --edit-server --delete-server --list --zero --set
			--start-daemon --stop-daemon --help --version
			--add-laddr --del-laddr --get-laddr --list-checks
			-t -u -f -6 -s -p -M -r -g -i -m -w -x -y -c -n -o -b -z -F
			--tcp-service --udp-service --sctp-service --fwmark-service --ipv6
			--scheduler --pe --persistent --netmask --real-server --gatewaying
			--ipip --masquerading --fullnat --laddr --ifname --tun-type --tun-port
			--tun-nocsum --tun-csum --tun-remcsum --weight --u-threshold
			--l-threshold --connection --timeout --daemon --stats --rate --exact
			--thresholds --persistent-conn --tun-info --nosort --sort --ops
			--numeric --sched-flags --syncid --sync-maxlen --mcast-interface
			--mcast-group --mcast-port --mcast-ttl --maintenance --drain
			--socket --gvs-version"
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	fi
}
complete -F _gvsadm gvsadm ipvsadm
