# Turns a file into C source holding its bytes, so synodd serves the status
# page without reading anything at run time and without an extra tool
# (xxd). Run at build time by server/http/CMakeLists.txt:
#   cmake -DSRC=page.html -DDST=page.c -DNAME=status_page_html -P embed.cmake
# DST gets `const unsigned char NAME[]` (the bytes, no NUL added) and
# `const size_t NAME_len`; status_page.h declares them.
foreach(var IN ITEMS SRC DST NAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${SRC}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
# 0xNN, per byte; 16 bytes a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n  " bytes "${bytes}")
get_filename_component(in_name "${SRC}" NAME)
file(WRITE "${DST}"
  "/* Generated at build time from ${in_name} by embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n\n"
  "const unsigned char ${NAME}[] = {\n  ${bytes}\n};\n"
  "const size_t ${NAME}_len = ${len};\n")
