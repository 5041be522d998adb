# Embeds the dashboard's files into C++ (run at build time by server/CMakeLists.txt):
#
#   cmake -DSOURCE_DIR=<server/dashboard> -DFILES=index.html,app.js,... -DOUTPUT=<file.cc>
#         -P embed.cmake
#
# Writes OUTPUT with each file's bytes as an array and the table DashboardAssets() returns
# (server/dashboard.h): name, SHA-256 (for the ETag) and content. The output is rewritten only
# when it changes, so that an unchanged dashboard does not relink ledgerd.
cmake_minimum_required(VERSION 3.25)

foreach(required SOURCE_DIR FILES OUTPUT)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "embed.cmake needs -D${required}=...")
  endif()
endforeach()

string(REPLACE "," ";" FILES "${FILES}")
set(arrays "")
set(entries "")
set(index 0)
foreach(name IN LISTS FILES)
  set(path "${SOURCE_DIR}/${name}")
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "embed.cmake: no ${path}")
  endif()
  file(READ "${path}" hex HEX)
  file(SHA256 "${path}" digest)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # 0x.., with a line break every 20 bytes; a trailing 0 keeps an empty file's array valid.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){20})" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "// ${name}\nconstexpr unsigned char kAsset${index}[] = {\n    ${bytes}0x00};\n\n")
  string(APPEND entries
         "    {\"${name}\", \"${digest}\",\n"
         "     std::string_view(reinterpret_cast<const char*>(kAsset${index}), ${size})},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(text "// Generated from server/dashboard/ by server/dashboard/embed.cmake: do not edit.
#include <span>
#include <string_view>

#include \"server/dashboard.h\"

namespace ledger::server {
namespace {

${arrays}const DashboardAsset kAssets[] = {
${entries}};

}  // namespace

std::span<const DashboardAsset> DashboardAssets() { return kAssets; }

}  // namespace ledger::server
")

if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
