package Subreaper;
# prctl(PR_SET_CHILD_SUBREAPER=36): daemonized nginx re-parents to us,
# so Test::Nginx's waitpid(WNOHANG) reaps it at once.
use strict;
BEGIN { eval { require 'syscall.ph'; 1 } }
our $nr = defined &SYS_prctl ? &SYS_prctl() : 157;   # x86_64
syscall($nr, 36, 1, 0, 0, 0) == 0
    or warn "prctl(PR_SET_CHILD_SUBREAPER) failed: $!\n";
1;
