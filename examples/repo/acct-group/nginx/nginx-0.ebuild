# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit acct-group

ACCT_GROUP_ID=702
