# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit acct-user

DESCRIPTION="User for www-servers/nginx"
ACCT_USER_ID=702
ACCT_USER_HOME=/var/lib/nginx
ACCT_USER_GROUPS=( nginx )

acct-user_add_deps
