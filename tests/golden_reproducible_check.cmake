# Regenerates the golden files into OUT and requires them to equal the committed ones.
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${PYTHON} ${SOURCE}/generate.py --out ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "generate.py failed (${rc})")
endif()
foreach(name torch.txt flavors.txt)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${SOURCE}/${name} ${OUT}/${name}
    RESULT_VARIABLE differ)
  if(NOT differ EQUAL 0)
    message(FATAL_ERROR "${name} differs from what tests/golden/generate.py makes now: "
                        "regenerate it and review the change")
  endif()
endforeach()
