# Script mode (cmake -P): writes a gzipped man page for one Vouch binary from
# its --help text, so the page always matches the flags the binary has.
#   cmake -DBIN=<exe> -DNAME=vouch-verifier -DSECTION=8 -DVERSION=0.1.0
#         -DSUMMARY="..." -DOUT=<file>.8.gz -P VouchManPage.cmake
# HOME is set to "~" so defaults under the caller's home read as ~/.config.
foreach(var BIN NAME SECTION VERSION SUMMARY OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "VouchManPage: ${var} is not set")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -E env HOME=~ ${BIN} --help
  OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --help failed: ${rc}")
endif()
# roff: a backslash is an escape; a line starting with . or ' is a request.
string(REPLACE "\\" "\\e" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(REPLACE "-" "\\-" help "${help}")
string(TOUPPER "${NAME}" upper)
if(SECTION STREQUAL "8")
  set(files ".SH FILES\n/etc/vouch/${CONFIG}.toml \\- configuration (a commented sample is installed)\n.br\n/etc/vouch/tls/ \\- CA certificate, this server's certificate and key\n")
  set(see "systemctl(1), vouchctl(1)")
else()
  set(files ".SH FILES\n~/.config/vouch/vouchctl.toml \\- configuration\n")
  set(see "vouch\\-verifier(8), vouch\\-registrar(8), vouch\\-agent(8)")
endif()
set(page ".TH ${upper} ${SECTION} \"\" \"Vouch ${VERSION}\" \"Vouch\"
.SH NAME
${NAME} \\- ${SUMMARY}
.SH SYNOPSIS
.B ${NAME}
[\\fIOPTIONS\\fR]
.SH DESCRIPTION
Every option can also be set in the configuration file or through the
environment variable named with it; the command line wins, then the
environment, then the file.
.PP
.nf
${help}.fi
${files}.SH SEE ALSO
${see}
")
get_filename_component(dir "${OUT}" DIRECTORY)
string(REGEX REPLACE "\\.gz$" "" plain "${OUT}")
file(WRITE "${plain}" "${page}")
# -n: no name or timestamp in the header (reproducible; lintian checks it).
execute_process(COMMAND gzip -n -9 -f "${plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${plain} failed")
endif()
