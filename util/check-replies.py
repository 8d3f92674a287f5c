#!/usr/bin/python3
"""The built-in action replies (src/ngx_http_support_agent_act.c) are
prompts/actions.txt without its comment lines: exit 1 when they differ."""
import ast
import os
import re
import sys

top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
src = open(os.path.join(top, "src/ngx_http_support_agent_act.c")).read()
m = re.search(r"ngx_http_sa_default_replies = ngx_string\(\n(.*?)\);", src, re.S)
if not m:
    sys.exit("check-replies: the built-in replies are not in the source")
built_in = "".join(ast.literal_eval(line.strip()) for line in m.group(1).split("\n"))
text = open(os.path.join(top, "prompts/actions.txt")).read()
lines = [line for line in text.split("\n") if not line.startswith("#")]
want = "\n".join(lines).strip("\n") + "\n"
if built_in != want:
    sys.exit("check-replies: prompts/actions.txt and the built-in replies differ")
print("check-replies: the built-in action replies are prompts/actions.txt")
