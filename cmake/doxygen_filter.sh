#!/bin/sh
# Doxygen's INPUT_FILTER (cmake/Doxyfile.in): attnlab's headers document
# declarations with plain // comments; this turns each comment line into a
# documentation line (///), so Doxygen shows it with the declaration below.
# Outside `code spans`, the characters Doxygen would read as commands or HTML
# (\ @ < > # % &) are escaped; inside them, < and > become entities (Doxygen
# reads a code span as <tt> and then its content as HTML). The headers themselves are not changed.
exec perl -pe '
  if (s{^(\s*)///?(?= |$)}{$1///}) {
    my ($lead, $text) = /^(\s*\/\/\/)(.*)$/;
    my @parts = split /(`[^`]*`)/, $text;
    for (@parts) {
      if (/^`/) { s/</&lt;/g; s/>/&gt;/g; } else { s/([\\@<>#%&])/\\$1/g; }
    }
    $_ = $lead . join("", @parts) . "\n";
  }' "$1"
