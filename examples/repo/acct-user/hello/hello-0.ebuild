# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit acct-user

DESCRIPTION="User for app-misc/hello"
ACCT_USER_ID=701
ACCT_USER_GROUPS=( hello )

acct-user_add_deps
