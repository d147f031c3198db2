add_library(clouddetect_options INTERFACE)
target_compile_options(clouddetect_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wformat=2)
if(CLOUDDETECT_WARNINGS_AS_ERRORS)
  target_compile_options(clouddetect_options INTERFACE -Werror)
endif()
