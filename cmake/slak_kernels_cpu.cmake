# libslak_kernels_cpu.so: the C ABI (include/slak/slak.h, plus include/slak/slak_cpu.h) over the C# CPU depthwise
# engine, compiled by .NET Native AOT from src/Slak.Native (no .NET runtime needed by the caller). Built by
# `dotnet publish` when the .NET SDK is found (SLAK_BUILD_CPU_LIBRARY=AUTO) into this build folder, next to
# libslak_kernels_emu.so; an IMPORTED target slak_kernels_cpu links C/C++ programs against it. See docs/plug-in.md.
set(SLAK_BUILD_CPU_LIBRARY AUTO CACHE STRING
    "Build libslak_kernels_cpu.so with dotnet publish (Native AOT): AUTO (when dotnet is found), ON, OFF")
set_property(CACHE SLAK_BUILD_CPU_LIBRARY PROPERTY STRINGS AUTO ON OFF)

if(NOT SLAK_BUILD_CPU_LIBRARY STREQUAL "OFF")
  find_program(SLAK_DOTNET dotnet)
  if(SLAK_DOTNET)
    set(SLAK_CPU_LIBRARY ${CMAKE_CURRENT_BINARY_DIR}/libslak_kernels_cpu.so)
    set(SLAK_CPU_PUBLISH_DIR ${CMAKE_CURRENT_BINARY_DIR}/slak_kernels_cpu_publish)
    file(GLOB_RECURSE SLAK_CPU_SOURCES CONFIGURE_DEPENDS
         ${CMAKE_CURRENT_SOURCE_DIR}/src/Slak/*.cs ${CMAKE_CURRENT_SOURCE_DIR}/src/Slak.Native/*.cs)
    # SlakEmuEnabled=false: the library never loads the CUDA emulator, and the publish must not re-enter a CMake
    # build of libslak_emu.so (possibly this very build folder, which the .NET build also uses).
    add_custom_command(
      OUTPUT ${SLAK_CPU_LIBRARY}
      COMMAND ${SLAK_DOTNET} publish ${CMAKE_CURRENT_SOURCE_DIR}/src/Slak.Native/Slak.Native.csproj -c Release
              -r linux-x64 -nologo -v q -clp:ErrorsOnly -p:SlakEmuEnabled=false -o ${SLAK_CPU_PUBLISH_DIR}
      COMMAND ${CMAKE_COMMAND} -E copy ${SLAK_CPU_PUBLISH_DIR}/libslak_kernels_cpu.so ${SLAK_CPU_LIBRARY}
      DEPENDS ${SLAK_CPU_SOURCES} ${CMAKE_CURRENT_SOURCE_DIR}/src/Slak.Native/Slak.Native.csproj
              ${CMAKE_CURRENT_SOURCE_DIR}/src/Slak/Slak.csproj
      COMMENT "dotnet publish src/Slak.Native (Native AOT): libslak_kernels_cpu.so"
      VERBATIM)
    add_custom_target(slak_kernels_cpu_build ALL DEPENDS ${SLAK_CPU_LIBRARY})
    add_library(slak_kernels_cpu SHARED IMPORTED GLOBAL)
    set_target_properties(slak_kernels_cpu PROPERTIES
      IMPORTED_LOCATION ${SLAK_CPU_LIBRARY} IMPORTED_SONAME libslak_kernels_cpu.so
      INTERFACE_INCLUDE_DIRECTORIES ${CMAKE_CURRENT_SOURCE_DIR}/include)
    add_dependencies(slak_kernels_cpu slak_kernels_cpu_build)
    install(FILES ${SLAK_CPU_LIBRARY} DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/include/slak/slak_cpu.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/slak)
    message(STATUS "slak: building libslak_kernels_cpu.so with ${SLAK_DOTNET} publish (Native AOT)")
  elseif(SLAK_BUILD_CPU_LIBRARY STREQUAL "ON")
    message(FATAL_ERROR "SLAK_BUILD_CPU_LIBRARY=ON but dotnet was not found")
  else()
    message(STATUS "slak: dotnet not found; libslak_kernels_cpu.so (the C# CPU engine behind the C ABI) is not built")
  endif()
endif()
