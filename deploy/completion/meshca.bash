# bash completion for meshca(1).  Installed as
# $datadir/bash-completion/completions/meshca; source it by hand otherwise.
# The word lists follow `meshca --help` and `meshca COMMAND --help`
# (tests/system/test_docs.py checks that every command is here).

_meshca_global='--config --url --admin-cert --admin-key --root-cert --json --version --help'
_meshca_enroll='--url --fingerprint --root-cert --token-file --out --key-type --dns --ip --ttl'

_meshca_opts()
{
	case "$1" in
	init)		echo "--state-dir --trust-domain --root-key-type --intermediate-key-type" \
			     "--root-ttl --intermediate-ttl --passphrase-file --listen --server-name" \
			     "--server-ttl --admin-name --admin-ttl --name-constraints --permitted-dns" \
			     "--permitted-ip --no-uri-constraint --intermediate-key --pin-file" ;;
	"service add")	echo "--spiffe-id --dns --ip --default-ttl --max-ttl --key-types --allow-wildcards" ;;
	"service update") echo "--dns --no-dns --add-dns --remove-dns --ip --no-ip --add-ip --remove-ip" \
			     "--default-ttl --max-ttl --key-types --allow-wildcards" ;;
	"service disable") echo "--revoke --reason" ;;
	"token create"|"admin token") echo "--ttl" ;;
	enroll)		echo "$_meshca_enroll" ;;
	agent)		echo "$_meshca_enroll --renew-at --jitter --backoff-min --backoff-max --reuse-key" \
			     "--exec --signal --pid-file --once --metrics-file" ;;
	"agent status")	echo "--out" ;;
	"certs list")	echo "--service --status --kind --limit" ;;
	"certs show")	echo "--pem" ;;
	revoke|"admin remove") echo "--reason" ;;
	"crl show")	echo "--out" ;;
	"ocsp check")	echo "--issuer --url" ;;
	"admin add")	echo "--role --ttl" ;;
	"admin enroll")	echo "$_meshca_enroll" ;;
	"audit list")	echo "--since --after --limit" ;;
	"audit verify")	echo "--db --checkpoint" ;;
	"audit checkpoint") echo "--db" ;;
	esac
}

_meshca_subs()
{
	case "$1" in
	service)	echo "add list show update disable enable" ;;
	token)		echo "create" ;;
	agent)		echo "status" ;;
	certs)		echo "list show" ;;
	crl)		echo "show" ;;
	ocsp)		echo "check" ;;
	admin)		echo "add list remove token enroll" ;;
	audit)		echo "list verify checkpoint" ;;
	esac
}

_meshca()
{
	local cur prev cmd="" sub="" i w
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}

	# The command words: the first two non-option words, skipping the
	# values of global options that take one.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case "$w" in
		--config|--url|--admin-cert|--admin-key|--root-cert) ((i++)); continue ;;
		-*) continue ;;
		esac
		if [ -z "$cmd" ]; then
			cmd=$w
		elif [ -z "$sub" ] && [ -n "$(_meshca_subs "$cmd")" ]; then
			sub=$w
			break
		fi
	done

	case "$prev" in
	--config|--admin-cert|--admin-key|--root-cert|--token-file|--passphrase-file|--pid-file|\
	--issuer|--db|--checkpoint|--pin-file)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--out|--state-dir)
		if [ "$cmd" = "crl" ]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		return ;;
	--key-type|--root-key-type|--intermediate-key-type)
		COMPREPLY=($(compgen -W "ecdsa-p256 ecdsa-p384 ed25519 rsa-2048 rsa-3072 rsa-4096" -- "$cur")); return ;;
	--reason)
		COMPREPLY=($(compgen -W "unspecified keyCompromise cACompromise affiliationChanged superseded cessationOfOperation privilegeWithdrawn aACompromise" -- "$cur")); return ;;
	--role)
		COMPREPLY=($(compgen -W "admin viewer" -- "$cur")); return ;;
	--status)
		COMPREPLY=($(compgen -W "active expired revoked" -- "$cur")); return ;;
	--kind)
		COMPREPLY=($(compgen -W "workload admin server" -- "$cur")); return ;;
	--allow-wildcards)
		COMPREPLY=($(compgen -W "true false" -- "$cur")); return ;;
	--signal)
		COMPREPLY=($(compgen -W "HUP INT TERM USR1 USR2" -- "$cur")); return ;;
	esac

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_meshca_global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "init service token enroll agent certs revoke crl ocsp admin status audit help" -- "$cur"))
		fi
		return
	fi
	if [ -z "$sub" ] && [ -n "$(_meshca_subs "$cmd")" ] && [[ $cur != -* ]]; then
		COMPREPLY=($(compgen -W "$(_meshca_subs "$cmd")" -- "$cur"))
		[ "$cmd" != agent ] && return
		[ ${#COMPREPLY[@]} -gt 0 ] && return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_meshca_opts "$cmd${sub:+ $sub}") --help $_meshca_global" -- "$cur"))
		return
	fi
	case "$cmd${sub:+ $sub}" in
	"ocsp check")	COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}

complete -F _meshca meshca
