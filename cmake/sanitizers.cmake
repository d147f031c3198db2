# CLOUDDETECT_SANITIZE=address,undefined or thread. Thread cannot be combined with address.
if(CLOUDDETECT_SANITIZE)
  if(CLOUDDETECT_SANITIZE MATCHES "thread" AND CLOUDDETECT_SANITIZE MATCHES "address")
    message(FATAL_ERROR "Thread sanitizer does not work together with address sanitizer")
  endif()
  add_compile_options(-fsanitize=${CLOUDDETECT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${CLOUDDETECT_SANITIZE})
endif()
